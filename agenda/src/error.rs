//! The one error enum of the crate, and the reasons an invitation is not filed.

use serde::{Deserialize, Serialize};

use mshub_directory::DirectoryError;
use mshub_store::StoreError;

/// Why a calendar part of a message was not filed. Each reason is given in French (for the
/// patient) and in English (for the sender's system and the logs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Rejection {
    #[error("fichier iCalendar trop volumineux ({size} octets, maximum {limit}) — iCalendar part of {size} bytes, more than the {limit} allowed")]
    TooLarge { size: usize, limit: usize },
    #[error("composants iCalendar imbriqués sur plus de {limit} niveaux — iCalendar components nested deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("plus de {limit} composants iCalendar — more than {limit} iCalendar components")]
    TooManyComponents { limit: usize },
    #[error("fichier iCalendar illisible : {detail} — unreadable iCalendar data: {detail}")]
    Unreadable { detail: String },
    #[error("événement {uid:?} invalide : {detail} — invalid event {uid:?}: {detail}")]
    InvalidEvent { uid: String, detail: String },
    #[error("méthode iTIP {method} non prise en charge (REQUEST, CANCEL ou PUBLISH attendu) — unsupported iTIP method {method} (RFC 5546 §1.4)")]
    UnsupportedMethod { method: String },
    #[error("aucun événement (VEVENT) dans le calendrier — no VEVENT in the calendar")]
    NoEvent,
    #[error("mise à jour périmée de {uid:?} ignorée (SEQUENCE {incoming}, le rendez-vous enregistré est à {current}) — stale update of {uid:?} ignored (SEQUENCE {incoming}, stored {current}; RFC 5546 §2.1.5)")]
    Stale {
        uid: String,
        incoming: i64,
        current: i64,
    },
    #[error("modification du rendez-vous {uid:?} refusée : seul son organisateur ({organizer}) peut le modifier ou l'annuler — only the organizer may update or cancel appointment {uid:?} (RFC 5546 §3.2)")]
    NotOrganizer { uid: String, organizer: String },
    #[error("règle de répétition sans fin pour l'événement {uid:?} : FREQ={freq} sans COUNT ni UNTIL créerait des rendez-vous sans limite ; indiquez un nombre d'occurrences (COUNT) ou une date de fin (UNTIL) — endless recurrence rule for event {uid:?}: FREQ={freq} with neither COUNT nor UNTIL (RFC 5545 §3.3.10)")]
    EndlessRule { uid: String, freq: String },
    #[error("règle de répétition trop dense pour l'événement {uid:?} : {count} occurrences la première année, plus de {limit} occurrences en un an ; espacez les rendez-vous ou raccourcissez la série — recurrence rule of event {uid:?} yields {count} occurrences within a year, more than the {limit} allowed per series")]
    TooManyOccurrences {
        uid: String,
        count: usize,
        limit: usize,
    },
    #[error(
        "erreur interne lors du classement : {detail} — internal error while filing: {detail}"
    )]
    Internal { detail: String },
}

/// Everything the agenda can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AgendaError {
    #[error("invitation refused: {0}")]
    Rejected(#[from] Rejection),
    #[error("{0} is not a patient account")]
    NotAPatient(String),
    #[error("no appointment with UID {0:?}")]
    NoSuchAppointment(String),
    #[error("appointment {0:?} was cancelled by its organizer: there is nothing to answer")]
    Cancelled(String),
    #[error("appointment {0:?} has no organizer to answer to")]
    NoOrganizer(String),
    #[error("agenda data file error: {0}")]
    Data(String),
    #[error("could not build the message: {0}")]
    Mail(String),
    #[error("no random source: {0}")]
    Random(String),
    /// Editing or deleting an appointment that is no longer there (deleted in another tab).
    #[error("Ce rendez-vous a été supprimé entre-temps ; rechargez l'agenda.")]
    Deleted(String),
    /// The form was built from an older version of the appointment.
    #[error("Ce rendez-vous a été modifié entre-temps, sur un autre appareil ou dans un autre onglet ; rechargez l'agenda puis refaites votre modification.")]
    StaleForm {
        uid: String,
        expected: i64,
        current: i64,
    },
    /// An organiser's invitation: only the organiser changes it (RFC 5546 §3.2).
    #[error("Ce rendez-vous vient d'une invitation d'un professionnel : lui seul peut le modifier ou l'annuler ; vous pouvez l'accepter ou le refuser.")]
    NotOwn(String),
    /// Accepting or declining what is not (or no longer) a proposal.
    #[error("Ce rendez-vous n'est pas une proposition en attente ; rechargez l'agenda.")]
    NotProposed(String),
    #[error("Indiquez un titre pour le rendez-vous.")]
    EmptyTitle,
    #[error("Le titre est trop long ({len} caractères) : {max} au plus.")]
    TitleTooLong { len: usize, max: usize },
    #[error("Le lieu est trop long ({len} caractères) : {max} au plus.")]
    PlaceTooLong { len: usize, max: usize },
    #[error("Le nom du professionnel est trop long ({len} caractères) : {max} au plus.")]
    ProfessionalTooLong { len: usize, max: usize },
    #[error("Les notes sont trop longues ({len} caractères) : {max} au plus.")]
    NotesTooLong { len: usize, max: usize },
    #[error("La fin du rendez-vous doit être après son début.")]
    EndNotAfterStart,
    #[error("La date est trop ancienne : un rendez-vous ne peut pas commencer avant 1900.")]
    TooEarly,
    #[error("La date est trop lointaine : un rendez-vous se prend au plus dix ans à l'avance.")]
    TooFarAhead,
    #[error("Identifiant d'application invalide : {0:?}.")]
    InvalidAppId(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

pub type Result<T, E = AgendaError> = std::result::Result<T, E>;
