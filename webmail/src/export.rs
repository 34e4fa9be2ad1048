//! "Export everything" (DESIGN §4 "Closing"): one zip with every message of every folder as
//! an `.eml` (RFC 5322 bytes as received), every document of the vault in its original form,
//! and a `LISEZMOI.txt` saying what is where. Built in memory off the async workers; the
//! export is written to the audit chain.

use std::io::Write;

use zip::write::SimpleFileOptions;
use zip::ZipWriter;

use mshub_directory::Account;
use mshub_store::AuditEvent;

use crate::Webmail;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] mshub_store::StoreError),
    #[error(transparent)]
    Vault(#[from] mshub_vault::VaultError),
    #[error("archive: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("archive: {0}")]
    Io(#[from] std::io::Error),
}

/// A file name safe in any archive tool: no path separators, no control characters.
fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_control() || "/\\:*?\"<>|".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c| c == '.' || c == ' ');
    if trimmed.is_empty() {
        "fichier".into()
    } else {
        trimmed.chars().take(120).collect()
    }
}

/// Extra files another part adds (the agenda's `.ics`).
pub type Extra = (String, Vec<u8>);

pub fn export(app: &Webmail, patient: &Account, extra: &[Extra]) -> Result<Vec<u8>, ExportError> {
    let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut messages = 0usize;
    for mailbox in app.store.mailboxes(patient.id)? {
        let folder = safe_name(&mailbox.name);
        for meta in app.store.messages(mailbox.id)? {
            let raw = app.store.read_message(mailbox.id, meta.uid)?;
            zip.start_file(
                format!("messages/{folder}/{:06}.eml", meta.uid.get()),
                options,
            )?;
            zip.write_all(&raw)?;
            messages += 1;
        }
    }
    let mut documents = 0usize;
    for doc in app.vault.documents_for_patient(patient)? {
        let Ok(bytes) = app.vault.read_document(patient, doc.id) else {
            continue;
        };
        let name = doc
            .file_name
            .clone()
            .unwrap_or_else(|| format!("document-{}", doc.reference));
        // Named by reference, as in the pages' links: the number stays inside the hub.
        zip.start_file(
            format!(
                "documents/{}/{}-{}",
                doc.category.name(),
                doc.reference,
                safe_name(&name)
            ),
            options,
        )?;
        zip.write_all(&bytes)?;
        documents += 1;
    }
    for (name, bytes) in extra {
        zip.start_file(name.as_str(), options)?;
        zip.write_all(bytes)?;
    }
    // The medical profile, current and every version kept (JSON, UTF-8).
    let (version, profile) = app.vault.medical_profile(patient.id)?;
    if version > 0 {
        let history = app.vault.profile_history(patient.id)?;
        let json =
            serde_json::json!({ "version": version, "profile": profile, "history": history });
        zip.start_file("profil/profil-medical.json", options)?;
        zip.write_all(&serde_json::to_vec_pretty(&json).map_err(std::io::Error::other)?)?;
    }
    zip.start_file("LISEZMOI.txt", options)?;
    write!(
        zip,
        "Export de l'espace santé de {}\r\n\r\n\
         messages/  : {messages} messages, un fichier .eml par message (à ouvrir avec un logiciel de messagerie)\r\n\
         documents/ : {documents} documents, dans leur format d'origine, rangés par catégorie\r\n\
         agenda/    : vos rendez-vous au format iCalendar (.ics), s'il y en a\r\n\
         profil/    : votre profil médical et l'historique de ses modifications (JSON), s'il est renseigné\r\n",
        patient.kind.display_name()
    )?;
    let bytes = zip.finish()?.into_inner();
    app.store.audit(
        AuditEvent::new(
            patient.address.as_str(),
            "space.export",
            format!("account:{}", patient.id),
        )
        .with_detail(format!(
            "patient:{} messages:{messages} documents:{documents}",
            patient.id
        )),
    )?;
    Ok(bytes)
}

/// The agenda's files in the patient's export.
pub fn agenda_files(app: &Webmail, patient: &Account) -> Vec<Extra> {
    match app.agenda.calendar_of(patient.id) {
        Ok(ics) => vec![("agenda/agenda.ics".to_string(), ics.into_bytes())],
        Err(e) => {
            tracing::warn!(error = %e, "agenda export failed");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_cannot_escape_their_folder() {
        assert_eq!(super::safe_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(super::safe_name("..."), "fichier");
        assert_eq!(super::safe_name("compte rendu.pdf"), "compte rendu.pdf");
    }
}
