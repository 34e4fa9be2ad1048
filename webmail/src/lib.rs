//! # mshub-webmail (not built yet)
//!
//! Will own the patient's web inbox (axum + maud, server-rendered, phone first, in French):
//! messages and replies through the MTA's submission path, documents, agenda, connected
//! applications, profile, access history, settings; local login and SAML single sign-on, CSRF
//! protection and strict cookies.
