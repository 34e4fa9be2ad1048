//! The document-type selector the document pages share (adding a document, classifying one):
//! the types of the vault's table grouped by category, each group sorted by label. A document
//! whose type is not in the table ("à classer") starts on an explicit "choose a type" entry,
//! never on whatever type happens to come first.

use maud::{html, Markup};

use mshub_vault::{Category, DocumentTypes};

/// `<select id=… name=…>` with the table's types; `current` is the code shown selected.
pub fn select(types: &DocumentTypes, id: &str, name: &str, current: &str) -> Markup {
    let known = types.get(current).is_some();
    html! {
        select id=(id) name=(name) {
            option value="" selected[!known] { "À classer (choisir un type)" }
            @for category in Category::ALL {
                @let mut of: Vec<_> = types.iter().filter(|t| t.category == category).collect();
                @if !of.is_empty() {
                    optgroup label=(category.label_fr()) {
                        @for t in { of.sort_by(|a, b| a.label.cmp(&b.label)); of } {
                            option value=(t.code) selected[known && t.code == current] { (t.label) }
                        }
                    }
                }
            }
        }
    }
}

/// "Compte rendu d'hospitalisation (Comptes rendus)", or the label alone when the label is the
/// category's ("À classer").
pub fn type_and_category(label: &str, category: Category) -> String {
    if label == category.label_fr() {
        label.to_string()
    } else {
        format!("{label} ({})", category.label_fr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unclassified_document_starts_on_choose_a_type() {
        let types = DocumentTypes::builtin();
        let html = select(&types, "type", "code", "").into_string();
        assert!(html.contains(r#"<option value="" selected>"#), "{html}");
        assert_eq!(html.matches(" selected").count(), 1);
        let html = select(&types, "type", "code", "11502-2").into_string();
        assert!(html.contains(r#"<option value="11502-2" selected>"#));
        assert_eq!(html.matches(" selected").count(), 1);
    }

    #[test]
    fn the_category_is_not_repeated_after_its_own_label() {
        assert_eq!(
            type_and_category("À classer", Category::AClasser),
            "À classer"
        );
        assert!(type_and_category("Compte rendu", Category::ComptesRendus).contains("("));
    }
}
