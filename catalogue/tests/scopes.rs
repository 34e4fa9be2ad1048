//! `documents:read:<category>` names the vault's categories, and no others.

use mshub_catalogue::{Scope, DOCUMENT_CATEGORIES};

#[test]
fn document_scopes_name_exactly_the_vault_categories() {
    let vault: Vec<&str> = mshub_vault::Category::ALL
        .iter()
        .map(|c| c.name())
        .collect();
    assert_eq!(DOCUMENT_CATEGORIES.to_vec(), vault);
    for c in mshub_vault::Category::ALL {
        let scope: Scope = format!("documents:read:{}", c.name()).parse().unwrap();
        assert!(
            scope.label_fr().contains(c.label_fr()),
            "{}",
            scope.label_fr()
        );
    }
}
