//! # mshub-agenda (not built yet)
//!
//! Will own the patient's agenda: iCalendar/iTIP invitations in delivered mail create, update
//! (by UID and SEQUENCE) or cancel appointments; accepting or declining sends an iTIP REPLY by
//! mail; prevention reminders; an ICS feed. It registers itself with the MTA as a filer.
