//! Finding professionals in the directory, as a patient does on the page "Accès des
//! professionnels": by name, profession, specialty, city or RPPS, typed any way (case and
//! French accents ignored).
//!
//! Records are sealed: there is no clear-text index of names to query. The search reads the
//! professionals' records only, listed by [`PROFESSIONALS`] (account ids, nothing else), so
//! its cost follows the number of professionals, not of patients.

use mshub_store::{AccountId, Batch, Tree};

use crate::{Account, AccountKind, Directory, Result, ACCOUNT};

/// Professional account id → (): whom the search reads.
pub(crate) const PROFESSIONALS: Tree = Tree("directory-professional");
/// Once per store: the index above built from the accounts that existed before it.
const INDEXED: &[u8] = b"professional-index-v1";
const INDEX_PAGE: usize = 1000;

/// `text` lower-cased, French accents and ligatures folded, white space collapsed: how names
/// typed by people are compared.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match c {
            'é' | 'è' | 'ê' | 'ë' => out.push('e'),
            'à' | 'â' | 'ä' => out.push('a'),
            'î' | 'ï' => out.push('i'),
            'ô' | 'ö' => out.push('o'),
            'ù' | 'û' | 'ü' => out.push('u'),
            'ÿ' => out.push('y'),
            'ç' => out.push('c'),
            'œ' => out.push_str("oe"),
            'æ' => out.push_str("ae"),
            '\u{2019}' => out.push('\''),
            c => out.push(c),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a professional is found by, folded.
fn haystack(account: &Account) -> Option<String> {
    match &account.kind {
        AccountKind::Professional {
            rpps,
            given_name,
            family_name,
            profession,
            specialty,
            city,
        } => Some(fold(&format!(
            "{given_name} {family_name} {} {} {specialty} {city} {} {}",
            profession.label_fr(),
            profession.name(),
            rpps.as_str(),
            account.address
        ))),
        _ => None,
    }
}

impl Directory {
    /// The usable professionals whose name, profession, specialty, city, RPPS or address
    /// contain every word of `query`, by family name; at most `limit`. An empty query finds
    /// no one (the directory is not listed whole).
    pub fn search_professionals(&self, query: &str, limit: usize) -> Result<Vec<Account>> {
        let query = fold(query);
        let words: Vec<&str> = query.split(' ').filter(|w| !w.is_empty()).collect();
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<AccountId> = self
            .store
            .kv()
            .scan(PROFESSIONALS, &[], None, None)?
            .into_iter()
            .filter_map(|(k, _)| Some(AccountId(u64::from_be_bytes(k.try_into().ok()?))))
            .collect();
        let mut found: Vec<Account> = ids
            .into_iter()
            .filter_map(|id| self.account(id).transpose())
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter(|a| a.is_usable())
            .filter(|a| haystack(a).is_some_and(|h| words.iter().all(|w| h.contains(w))))
            .collect();
        found.sort_by_key(|a| match &a.kind {
            AccountKind::Professional {
                family_name,
                given_name,
                ..
            } => (fold(family_name), fold(given_name)),
            _ => Default::default(),
        });
        found.truncate(limit);
        Ok(found)
    }
}

impl Directory {
    /// Builds [`PROFESSIONALS`] from the accounts of a store written before it existed, once.
    pub(crate) fn index_professionals(&self) -> Result<()> {
        let kv = self.store.kv();
        if kv.get(crate::record::MIGRATION, INDEXED)?.is_some() {
            return Ok(());
        }
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = kv.scan(ACCOUNT, &[], after.as_deref(), Some(INDEX_PAGE))?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            let mut batch = Batch::new();
            for (key, raw) in page {
                if matches!(
                    self.records.decode(&raw)?.kind,
                    AccountKind::Professional { .. }
                ) {
                    batch.put(PROFESSIONALS, key, Vec::new());
                }
            }
            let _ = kv.commit(&batch)?;
        }
        let mut batch = Batch::new();
        batch.put(
            crate::record::MIGRATION,
            INDEXED,
            mshub_store::now().to_be_bytes(),
        );
        let _ = kv.commit(&batch)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn fold_ignores_case_accents_and_spacing() {
        assert_eq!(fold("  Œdème   À\tl’Écoute "), "oedeme a l'ecoute");
        assert_eq!(fold("Chirurgie Orthopédique"), "chirurgie orthopedique");
        assert_eq!(fold(" \t "), "");
    }
}
