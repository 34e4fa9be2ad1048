//! The authorization code flow with PKCE, tokens, consent and revocation.

mod common;

use common::*;
use mshub_catalogue::*;

const APP: &str = "balance-gluco";
const REDIRECT: &str = "http://127.0.0.1:49152/callback";

fn code(h: &Hub, seed: char, scopes: &[Scope]) -> (String, String) {
    let (verifier, challenge) = pkce(seed);
    let code = h
        .catalogue
        .authorize(h.camille.id, APP, scopes, REDIRECT, &challenge, now())
        .unwrap();
    (code, verifier)
}

fn write() -> Vec<Scope> {
    vec![Scope::MeasurementsWrite]
}

#[test]
fn code_with_the_right_verifier_gives_a_bearer_token() {
    let h = hub();
    let (code, verifier) = code(&h, 'a', &write());
    let token = h
        .catalogue
        .exchange(APP, &code, &verifier, REDIRECT, now())
        .unwrap();
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.expires_in, 3600);
    assert_eq!(token.scope, "measurements:write");
    assert_eq!(token.access_token.len(), 43, "32 bytes base64url");
    let grant = h
        .catalogue
        .authenticate(&token.access_token, now())
        .unwrap();
    assert_eq!(grant.app_id, APP);
    assert_eq!(grant.patient, h.camille.id);
    assert_eq!(grant.scopes, write());
    assert_eq!(grant.actor(), "app:balance-gluco");
    // The connection is listed with what it may do.
    let connections = h.catalogue.connections(h.camille.id).unwrap();
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].app_id, APP);
    assert_eq!(connections[0].scopes, write());
    // Expired after an hour.
    assert!(matches!(
        h.catalogue.authenticate(&token.access_token, now() + 3601),
        Err(CatalogueError::InvalidToken)
    ));
    // Neither the token nor the code is stored in clear.
    let kv_dir = h.store.dir().join("kv");
    let mut found = false;
    for entry in walk(&kv_dir) {
        let bytes = std::fs::read(entry).unwrap();
        for secret in [&token.access_token, &token.refresh_token, &code] {
            found |= bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        }
    }
    assert!(!found, "a token or code is stored in clear");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn wrong_verifier_is_refused_and_burns_the_code() {
    let h = hub();
    let (code, verifier) = code(&h, 'a', &write());
    let (other, _) = pkce('b');
    let err = h
        .catalogue
        .exchange(APP, &code, &other, REDIRECT, now())
        .unwrap_err();
    assert!(matches!(err, CatalogueError::VerifierMismatch), "{err}");
    assert_eq!(err.oauth_error(), "invalid_grant");
    assert!(h
        .catalogue
        .exchange(APP, &code, &verifier, REDIRECT, now())
        .is_err());
    // A malformed verifier is an invalid request (RFC 7636 §4.1: 43 to 128 characters).
    let err = h
        .catalogue
        .exchange(APP, &code, "short", REDIRECT, now())
        .unwrap_err();
    assert_eq!(err.oauth_error(), "invalid_request");
}

#[test]
fn reused_code_is_refused_and_the_first_token_dies() {
    let h = hub();
    let (code, verifier) = code(&h, 'a', &write());
    let first = h
        .catalogue
        .exchange(APP, &code, &verifier, REDIRECT, now())
        .unwrap();
    h.catalogue
        .authenticate(&first.access_token, now())
        .unwrap();
    let err = h
        .catalogue
        .exchange(APP, &code, &verifier, REDIRECT, now())
        .unwrap_err();
    assert!(matches!(err, CatalogueError::CodeReused), "{err}");
    assert_eq!(err.oauth_error(), "invalid_grant");
    assert!(h
        .catalogue
        .authenticate(&first.access_token, now())
        .is_err());
    assert!(h
        .catalogue
        .refresh(APP, &first.refresh_token, now())
        .is_err());
    let reuse_audited = h
        .store
        .audit_records(0, 1000)
        .unwrap()
        .iter()
        .any(|r| r.event.action == "app.code-reused");
    assert!(reuse_audited);
}

#[test]
fn wrong_redirect_uri_is_refused_at_authorize_and_at_exchange() {
    let h = hub();
    let (verifier, challenge) = pkce('a');
    for bad in [
        "https://evil.example/callback",
        "http://127.0.0.1:1234/other",
        "http://127.0.0.1.evil.example/callback",
    ] {
        let err = h
            .catalogue
            .authorize(h.camille.id, APP, &write(), bad, &challenge, now())
            .unwrap_err();
        assert!(
            matches!(err, CatalogueError::RedirectUri(_)),
            "{bad}: {err}"
        );
    }
    let code = h
        .catalogue
        .authorize(h.camille.id, APP, &write(), REDIRECT, &challenge, now())
        .unwrap();
    let err = h
        .catalogue
        .exchange(
            APP,
            &code,
            &verifier,
            "http://127.0.0.1:49153/callback",
            now(),
        )
        .unwrap_err();
    assert!(matches!(err, CatalogueError::CodeMismatch), "{err}");
}

#[test]
fn code_of_another_app_is_refused() {
    let h = hub();
    let (code, verifier) = code(&h, 'a', &write());
    let err = h
        .catalogue
        .exchange("souffle-libre", &code, &verifier, REDIRECT, now())
        .unwrap_err();
    assert!(matches!(err, CatalogueError::CodeMismatch), "{err}");
}

#[test]
fn expired_code_is_refused() {
    let h = hub();
    let (code, verifier) = code(&h, 'a', &write());
    let err = h
        .catalogue
        .exchange(APP, &code, &verifier, REDIRECT, now() + 601)
        .unwrap_err();
    assert!(matches!(err, CatalogueError::CodeExpired), "{err}");
    let err = h
        .catalogue
        .exchange(APP, "no-such-code", &verifier, REDIRECT, now())
        .unwrap_err();
    assert!(matches!(err, CatalogueError::UnknownCode), "{err}");
}

#[test]
fn scope_not_offered_by_the_app_is_refused_at_authorize() {
    let h = hub();
    let (_, challenge) = pkce('a');
    let err = h
        .catalogue
        .authorize(
            h.camille.id,
            APP,
            &[Scope::MeasurementsWrite, Scope::DocumentsRead("all".into())],
            REDIRECT,
            &challenge,
            now(),
        )
        .unwrap_err();
    assert!(matches!(err, CatalogueError::ScopeNotOffered(_)), "{err}");
    assert_eq!(err.oauth_error(), "invalid_scope");
    let err = h
        .catalogue
        .authorize(h.camille.id, APP, &[], REDIRECT, &challenge, now())
        .unwrap_err();
    assert!(matches!(err, CatalogueError::NoScope), "{err}");
    let err = h
        .catalogue
        .authorize(
            h.camille.id,
            "unknown-app",
            &write(),
            REDIRECT,
            &challenge,
            now(),
        )
        .unwrap_err();
    assert_eq!(err.oauth_error(), "invalid_client");
    // PKCE is mandatory, S256 only: a plain challenge (the verifier itself) has the wrong shape.
    let err = h
        .catalogue
        .authorize(
            h.camille.id,
            APP,
            &write(),
            REDIRECT,
            "plain-verifier",
            now(),
        )
        .unwrap_err();
    assert!(matches!(err, CatalogueError::BadChallenge), "{err}");
}

#[test]
fn only_patients_can_consent() {
    let h = hub();
    let (_, challenge) = pkce('a');
    let err = h
        .catalogue
        .authorize(
            mshub_store::AccountId(999),
            APP,
            &write(),
            REDIRECT,
            &challenge,
            now(),
        )
        .unwrap_err();
    assert!(matches!(err, CatalogueError::NotAPatient(_)), "{err}");
}

#[test]
fn revoke_kills_the_token_at_once_and_is_audited() {
    let h = hub();
    let (code, verifier) = code(&h, 'a', &write());
    let token = h
        .catalogue
        .exchange(APP, &code, &verifier, REDIRECT, now())
        .unwrap();
    h.catalogue
        .authenticate(&token.access_token, now())
        .unwrap();
    h.catalogue.revoke(h.camille.id, APP, CAMILLE).unwrap();
    assert!(matches!(
        h.catalogue.authenticate(&token.access_token, now()),
        Err(CatalogueError::InvalidToken)
    ));
    assert!(h
        .catalogue
        .refresh(APP, &token.refresh_token, now())
        .is_err());
    assert!(h.catalogue.connections(h.camille.id).unwrap().is_empty());
    let actions: Vec<String> = h
        .catalogue
        .activity(h.camille.id, Some(APP))
        .unwrap()
        .into_iter()
        .map(|r| r.event.action)
        .collect();
    assert_eq!(actions, ["app.consent", "app.token", "app.revoke"]);
}

#[test]
fn a_code_issued_before_revoke_is_dead_too() {
    let h = hub();
    let (code, verifier) = code(&h, 'a', &write());
    h.catalogue.revoke(h.camille.id, APP, CAMILLE).unwrap();
    let err = h
        .catalogue
        .exchange(APP, &code, &verifier, REDIRECT, now())
        .unwrap_err();
    assert!(matches!(err, CatalogueError::ConsentWithdrawn), "{err}");
}

#[test]
fn changing_the_consent_kills_earlier_tokens_same_consent_does_not() {
    let h = hub();
    let app = "souffle-libre";
    let both = [Scope::MeasurementsWrite, Scope::MeasurementsRead];
    let get = |seed: char, scopes: &[Scope]| {
        let (verifier, challenge) = pkce(seed);
        let code = h
            .catalogue
            .authorize(h.camille.id, app, scopes, REDIRECT, &challenge, now())
            .unwrap();
        h.catalogue
            .exchange(app, &code, &verifier, REDIRECT, now())
            .unwrap()
    };
    let first = get('a', &both);
    let same = get('b', &both);
    h.catalogue
        .authenticate(&first.access_token, now())
        .unwrap();
    h.catalogue.authenticate(&same.access_token, now()).unwrap();
    let narrower = get('c', &[Scope::MeasurementsRead]);
    assert!(h
        .catalogue
        .authenticate(&first.access_token, now())
        .is_err());
    assert!(h.catalogue.authenticate(&same.access_token, now()).is_err());
    let grant = h
        .catalogue
        .authenticate(&narrower.access_token, now())
        .unwrap();
    assert_eq!(grant.scopes, [Scope::MeasurementsRead]);
    assert!(grant.require(&Scope::MeasurementsWrite).is_err());
    let c = h.catalogue.connections(h.camille.id).unwrap();
    assert_eq!(c[0].scopes, [Scope::MeasurementsRead]);
}

#[test]
fn refresh_rotates_and_the_old_refresh_token_stops_working() {
    let h = hub();
    let (code, verifier) = code(&h, 'a', &write());
    let first = h
        .catalogue
        .exchange(APP, &code, &verifier, REDIRECT, now())
        .unwrap();
    let second = h
        .catalogue
        .refresh(APP, &first.refresh_token, now())
        .unwrap();
    h.catalogue
        .authenticate(&second.access_token, now())
        .unwrap();
    assert!(matches!(
        h.catalogue.refresh(APP, &first.refresh_token, now()),
        Err(CatalogueError::InvalidRefreshToken)
    ));
    // Not usable by another app, nor as an access token.
    assert!(h
        .catalogue
        .refresh("souffle-libre", &second.refresh_token, now())
        .is_err());
    assert!(h
        .catalogue
        .authenticate(&second.refresh_token, now())
        .is_err());
}

#[test]
fn an_app_removed_from_the_catalogue_loses_its_access() {
    let h = hub();
    let (code, verifier) = code(&h, 'a', &write());
    let token = h
        .catalogue
        .exchange(APP, &code, &verifier, REDIRECT, now())
        .unwrap();
    let without = catalogue_text(1).replace("id = \"balance-gluco\"", "id = \"balance-gluco-v2\"");
    let sig = mshub_catalogue::authority::sign(h.authority.secret.as_bytes(), without.as_bytes())
        .unwrap();
    h.catalogue
        .import(
            without.as_bytes(),
            sig.as_bytes(),
            h.authority.public.as_bytes(),
            "operator",
        )
        .unwrap();
    assert!(h
        .catalogue
        .authenticate(&token.access_token, now())
        .is_err());
}

#[test]
fn consent_is_sealed_at_rest() {
    let h = hub();
    let _ = code(&h, 'a', &[Scope::MeasurementsWrite]);
    for entry in walk(&h.store.dir().join("kv")) {
        let bytes = std::fs::read(entry).unwrap();
        let needle = b"\"since\"";
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "consent in clear"
        );
    }
}

#[test]
fn disabling_the_patient_stops_the_apps() {
    let h = hub();
    let (code, verifier) = code(&h, 'a', &write());
    let token = h
        .catalogue
        .exchange(APP, &code, &verifier, REDIRECT, now())
        .unwrap();
    h.directory
        .set_disabled(&h.camille.address, true, "operator")
        .unwrap();
    assert!(h
        .catalogue
        .authenticate(&token.access_token, now())
        .is_err());
    h.directory
        .set_disabled(&h.camille.address, false, "operator")
        .unwrap();
    h.catalogue
        .authenticate(&token.access_token, now())
        .unwrap();
}

#[test]
fn a_code_raced_by_two_exchanges_gives_at_most_one_token() {
    let h = std::sync::Arc::new(hub());
    let (code, verifier) = code(&h, 'a', &write());
    let outcomes: Vec<_> = (0..4)
        .map(|_| {
            let (h, code, verifier) = (h.clone(), code.clone(), verifier.clone());
            std::thread::spawn(move || {
                h.catalogue
                    .exchange(APP, &code, &verifier, REDIRECT, now())
                    .is_ok()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{outcomes:?}");
}
