//! Who wrote: a correspondent as the directory knows it (name, profession and specialty,
//! organisation), kept a short while in [`crate::summary::Identities`].

use std::sync::Arc;

use mshub_directory::{AccountKind, Address};

use crate::Webmail;

/// Who a correspondent is, as the directory knows it.
#[derive(Clone)]
pub struct Correspondent {
    pub name: String,
    /// Profession and specialty, or the kind of mailbox.
    pub role: Option<String>,
    pub organisation: Option<String>,
    pub is_professional: bool,
}

/// The correspondent of `address`, from the webmail's short-lived cache of directory
/// identities (see [`crate::summary::Identities`]): an inbox page names the same few senders
/// again and again.
pub fn correspondent(
    app: &Webmail,
    address: Option<&str>,
    fallback: Option<&str>,
) -> Arc<Correspondent> {
    if let Some(a) = address {
        if let Some(c) = app.identities.get(a) {
            return c;
        }
    }
    let c = Arc::new(lookup_correspondent(app, address, fallback));
    match address {
        // Only known accounts are cached: an unknown sender's name is the message's own.
        Some(a) if c.role.is_some() => app.identities.put(a, c.clone()),
        _ => {}
    }
    c
}

fn lookup_correspondent(
    app: &Webmail,
    address: Option<&str>,
    fallback: Option<&str>,
) -> Correspondent {
    let unknown = || Correspondent {
        name: fallback
            .or(address)
            .unwrap_or("expéditeur inconnu")
            .to_string(),
        role: None,
        organisation: None,
        is_professional: false,
    };
    let Some(address) = address.and_then(|a| Address::try_from(a).ok()) else {
        return unknown();
    };
    let Ok(Some(account)) = app.directory.account_by_address(&address) else {
        return unknown();
    };
    let organisation = app
        .directory
        .organisations_of(&address)
        .ok()
        .and_then(|o| o.first().map(|o| o.kind.display_name()));
    let (role, is_professional) = match &account.kind {
        AccountKind::Professional {
            profession,
            specialty,
            ..
        } => (
            Some(if specialty.is_empty() {
                profession.label_fr().to_string()
            } else {
                format!("{}, {specialty}", profession.label_fr())
            }),
            true,
        ),
        AccountKind::Organisation { .. } => (Some("messagerie d'organisation".into()), true),
        AccountKind::Application { .. } => (Some("application référencée".into()), false),
        AccountKind::Patient { .. } => (Some("patient".into()), false),
    };
    Correspondent {
        name: account.kind.display_name(),
        role,
        organisation,
        is_professional,
    }
}
