//! # mshub-vault (not built yet)
//!
//! Will own the patient's document vault: filing attachments from delivered messages
//! (IHE XDM zips, CDA R2, PDF and images) as typed documents of the patient, the document-type
//! table, visibility (masked, not yet visible), the access matrix of profession × document
//! type, every read in the audit chain, and the patient's notifications. It registers itself
//! with the MTA as a filer.
