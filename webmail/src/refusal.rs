//! The MTA's refusals in words a patient reads: a reply that was not sent, an invitation
//! answer that could not go.

use crate::format::human_size;

/// The MTA's refusal, in words a patient reads.
pub fn refusal_fr(refusal: &mshub_mta::refusal::Refusal) -> String {
    use mshub_mta::refusal::Refusal;
    match refusal {
        Refusal::PatientCannotStart(_) => {
            "vous ne pouvez écrire qu'à un professionnel de santé qui vous a écrit".into()
        }
        Refusal::PatientCannotWriteToPatient => {
            "un patient ne peut pas écrire à un autre patient".into()
        }
        Refusal::MessageTooBig(max) => format!(
            "le message dépasse la taille autorisée ({})",
            human_size(*max)
        ),
        other => {
            let reply = other.reply();
            format!(
                "le service de messagerie a refusé le message ({} {})",
                reply.code,
                reply.lines.join(" ")
            )
        }
    }
}
