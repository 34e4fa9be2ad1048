//! # mshub-catalogue (not built yet)
//!
//! Will own the signed catalogue of referenced health applications, the patient's consents,
//! application tokens scoped by those consents, their revocation, and measurements pushed by
//! applications.
