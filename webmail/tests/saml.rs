//! SAML single sign-on against a real peer: a pysaml2 identity provider (`tests/saml/idp.py`,
//! signing with the `xmlsec1` tool) answers the AuthnRequests that [`SamlSp`] builds, and the
//! SP consumes its responses, genuine or spoiled.
//!
//! Needs python3 with pysaml2 and xmlsec1 (`scripts/install-deps --tests`); without them every
//! test fails and says so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::slice;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use mshub_webmail::saml::{LoginRequest, SamlConfig, SamlError, SamlSp};

const IDP_ENTITY_ID: &str = "https://idp.mshub.test/metadata";
const IDP_SSO_URL: &str = "https://idp.mshub.test/sso";
const CAMILLE_INS: &str = "284057511204339";
/// Another valid INS (same body, other birth place), to forge a response with.
const DOMINIQUE_INS: &str = "284057511205329";

fn idp_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/saml/idp.py")
}

/// The Python that has pysaml2: `python3` on the PATH, else Debian's (package
/// `python3-pysaml2`), which a pyenv or venv `python3` earlier on the PATH would hide.
/// Fails (never skips) when there is none, or no `xmlsec1`.
fn python() -> &'static str {
    static PYTHON: OnceLock<Result<&'static str, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        let hint = "run `scripts/install-deps --tests` (the test IdP needs python3 with pysaml2, \
                    and xmlsec1)";
        let mut tried = Vec::new();
        let python =
            ["python3", "/usr/bin/python3"].into_iter().find(|python| {
                match Command::new(python).args(["-c", "import saml2"]).output() {
                    Ok(out) if out.status.success() => true,
                    Ok(out) => {
                        let err = String::from_utf8_lossy(&out.stderr);
                        tried.push(format!(
                            "{python}: {}",
                            err.trim().lines().last().unwrap_or("")
                        ));
                        false
                    }
                    Err(e) => {
                        tried.push(format!("{python}: {e}"));
                        false
                    }
                }
            });
        let Some(python) = python else {
            return Err(format!(
                "no python3 with pysaml2 ({}): {hint}",
                tried.join("; ")
            ));
        };
        match Command::new("xmlsec1").arg("--version").output() {
            Ok(out) if out.status.success() => Ok(python),
            _ => Err(format!("xmlsec1 cannot run: {hint}")),
        }
    });
    match found {
        Ok(python) => python,
        Err(e) => panic!("{e}"),
    }
}

fn run_idp(args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(idp_script())
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "idp.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A test IdP: its own fresh key, certificate and metadata in a temporary directory.
struct Idp {
    dir: tempfile::TempDir,
}

impl Idp {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        run_idp(&[
            "init",
            dir.path().to_str().unwrap(),
            IDP_ENTITY_ID,
            IDP_SSO_URL,
        ]);
        Self { dir }
    }

    fn metadata(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("metadata.xml")).unwrap()
    }

    /// The base64 SAMLResponse this IdP gives the patient `ins` for `login`, addressed to `sp`.
    fn respond(&self, sp: &SamlSp, login: &LoginRequest, ins: &str, sign: &str) -> String {
        self.respond_with(sp, login, ins, &["--sign", sign])
    }

    fn respond_with(&self, sp: &SamlSp, login: &LoginRequest, ins: &str, opts: &[&str]) -> String {
        let sp_metadata = self.dir.path().join(format!("sp-{}.xml", login.request_id));
        std::fs::write(&sp_metadata, sp.metadata_xml()).unwrap();
        let mut args = vec![
            "respond",
            self.dir.path().to_str().unwrap(),
            sp_metadata.to_str().unwrap(),
            &login.url,
            ins,
        ];
        args.extend_from_slice(opts);
        run_idp(&args)
    }
}

fn config() -> SamlConfig {
    SamlConfig {
        idp_metadata: None,
        sp_entity_id: "https://mshub.test/saml/metadata".into(),
        acs_url: "https://mshub.test/saml/acs".into(),
        identity_attribute: "ins".into(),
        max_clock_skew_secs: 60,
    }
}

fn sp_of(idp: &Idp) -> SamlSp {
    SamlSp::new(&config(), &idp.metadata()).expect("the test IdP's metadata is usable")
}

fn decode(b64: &str) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

fn encode(xml: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(xml)
}

#[test]
fn a_signed_assertion_logs_the_patient_in_with_its_ins() {
    let idp = Idp::new();
    let sp = sp_of(&idp);
    let login = sp.login_redirect("/inbox").unwrap();
    assert!(login.url.starts_with(IDP_SSO_URL));
    assert!(login.url.contains("SAMLRequest="));
    assert!(login.url.contains("RelayState=%2Finbox"));

    let response = idp.respond(&sp, &login, CAMILLE_INS, "assertion");
    let who = sp
        .consume(
            &response,
            slice::from_ref(&login.request_id),
            SystemTime::now(),
        )
        .expect("a genuine response is accepted");
    assert_eq!(who.ins.as_ref().map(|i| i.as_str()), Some(CAMILLE_INS));
    assert_eq!(
        who.attributes.get("ins"),
        Some(&vec![CAMILLE_INS.to_string()])
    );
    assert!(!who.name_id.is_empty());
    assert_eq!(who.in_response_to, login.request_id);
}

#[test]
fn a_response_signed_as_a_whole_is_accepted_too() {
    let idp = Idp::new();
    let sp = sp_of(&idp);
    for sign in ["response", "both"] {
        let login = sp.login_redirect("").unwrap();
        let response = idp.respond(&sp, &login, CAMILLE_INS, sign);
        let who = sp
            .consume(
                &response,
                slice::from_ref(&login.request_id),
                SystemTime::now(),
            )
            .unwrap_or_else(|e| panic!("signed {sign}: {e}"));
        assert_eq!(who.ins.unwrap().as_str(), CAMILLE_INS);
    }
}

#[test]
fn a_replayed_response_is_refused() {
    let idp = Idp::new();
    let sp = sp_of(&idp);
    let login = sp.login_redirect("").unwrap();
    let response = idp.respond(&sp, &login, CAMILLE_INS, "assertion");
    let outstanding = [login.request_id.clone()];
    sp.consume(&response, &outstanding, SystemTime::now())
        .unwrap();
    assert_eq!(
        sp.consume(&response, &outstanding, SystemTime::now()),
        Err(SamlError::Replayed)
    );
}

#[test]
fn a_second_answer_to_the_same_request_is_refused() {
    let idp = Idp::new();
    let sp = sp_of(&idp);
    let login = sp.login_redirect("").unwrap();
    let first = idp.respond(&sp, &login, CAMILLE_INS, "assertion");
    let second = idp.respond(&sp, &login, CAMILLE_INS, "assertion");
    let outstanding = [login.request_id.clone()];
    sp.consume(&first, &outstanding, SystemTime::now()).unwrap();
    assert_eq!(
        sp.consume(&second, &outstanding, SystemTime::now()),
        Err(SamlError::Replayed)
    );
}

#[test]
fn a_response_tampered_after_signing_is_refused() {
    let idp = Idp::new();
    let sp = sp_of(&idp);
    for sign in ["assertion", "response"] {
        let login = sp.login_redirect("").unwrap();
        let xml = decode(&idp.respond(&sp, &login, CAMILLE_INS, sign));
        assert!(xml.contains(CAMILLE_INS));
        let forged = encode(&xml.replace(CAMILLE_INS, DOMINIQUE_INS));
        assert_eq!(
            sp.consume(
                &forged,
                slice::from_ref(&login.request_id),
                SystemTime::now()
            ),
            Err(SamlError::BadSignature),
            "signed {sign}"
        );
    }
}

/// XML signature wrapping: a forged assertion (another INS, another ID) placed beside or around
/// the genuine signed one, with or without a copy of its signature: refused.
#[test]
fn a_forged_assertion_wrapped_around_a_signed_one_is_refused() {
    let idp = Idp::new();
    let sp = sp_of(&idp);
    for sign in ["assertion", "response"] {
        let login = sp.login_redirect("").unwrap();
        let xml = decode(&idp.respond(&sp, &login, CAMILLE_INS, sign));
        let start = xml.find("<ns1:Assertion").expect("pysaml2 prefixes");
        let end = xml.find("</ns1:Assertion>").unwrap() + "</ns1:Assertion>".len();
        let genuine = &xml[start..end];
        let forged =
            genuine
                .replace(CAMILLE_INS, DOMINIQUE_INS)
                .replacen(" ID=\"", " ID=\"forged-", 1);
        let unsigned_forged = match (
            forged.find("<ns2:Signature"),
            forged.find("</ns2:Signature>"),
        ) {
            (Some(a), Some(b)) => format!(
                "{}{}",
                &forged[..a],
                &forged[b + "</ns2:Signature>".len()..]
            ),
            _ => forged.clone(),
        };
        let extensions = |inner: &str| format!("<ns0:Extensions>{inner}</ns0:Extensions>");
        let attacks = [
            // Forged before, then after, the genuine one.
            format!("{}{unsigned_forged}{}", &xml[..start], &xml[start..]),
            format!("{}{unsigned_forged}{}", &xml[..end], &xml[end..]),
            // Genuine hidden in Extensions, forged (with a copy of the signature) in its place.
            format!(
                "{}{}{forged}{}",
                &xml[..start],
                extensions(genuine),
                &xml[end..]
            ),
            format!(
                "{}{}{unsigned_forged}{}",
                &xml[..start],
                extensions(genuine),
                &xml[end..]
            ),
        ];
        for (i, attack) in attacks.iter().enumerate() {
            let outcome = sp.consume(
                &encode(attack),
                slice::from_ref(&login.request_id),
                SystemTime::now(),
            );
            assert!(
                outcome.is_err(),
                "signed {sign}, attack {i}: accepted as {:?}",
                outcome.map(|who| who.ins)
            );
        }
    }
}

#[test]
fn an_unsigned_response_is_refused() {
    let idp = Idp::new();
    let sp = sp_of(&idp);
    let login = sp.login_redirect("").unwrap();
    let response = idp.respond(&sp, &login, CAMILLE_INS, "none");
    let err = sp
        .consume(
            &response,
            slice::from_ref(&login.request_id),
            SystemTime::now(),
        )
        .unwrap_err();
    assert_eq!(err, SamlError::NotSigned);
    assert_eq!(
        err.to_string(),
        "la réponse du fournisseur d'identité n'est pas signée"
    );
}

#[test]
fn a_response_for_another_service_is_refused() {
    let idp = Idp::new();
    let sp = sp_of(&idp);
    // Another SP of the same IdP, with the same ACS URL: only the Audience differs.
    let other = SamlSp::new(
        &SamlConfig {
            sp_entity_id: "https://other.mshub.test/saml/metadata".into(),
            ..config()
        },
        &idp.metadata(),
    )
    .unwrap();
    let login = other.login_redirect("").unwrap();
    let response = idp.respond(&other, &login, CAMILLE_INS, "assertion");
    assert_eq!(
        sp.consume(
            &response,
            slice::from_ref(&login.request_id),
            SystemTime::now()
        ),
        Err(SamlError::WrongAudience)
    );
}

#[test]
fn a_response_posted_to_another_address_is_refused() {
    let idp = Idp::new();
    let sp = sp_of(&idp);
    let elsewhere = SamlSp::new(
        &SamlConfig {
            acs_url: "https://mshub.test/elsewhere/acs".into(),
            ..config()
        },
        &idp.metadata(),
    )
    .unwrap();
    let login = elsewhere.login_redirect("").unwrap();
    let response = idp.respond(&elsewhere, &login, CAMILLE_INS, "assertion");
    assert_eq!(
        sp.consume(
            &response,
            slice::from_ref(&login.request_id),
            SystemTime::now()
        ),
        Err(SamlError::WrongDestination)
    );
}

#[test]
fn an_expired_response_is_refused() {
    let idp = Idp::new();
    let sp = sp_of(&idp);
    let login = sp.login_redirect("").unwrap();
    let response = idp.respond(&sp, &login, CAMILLE_INS, "assertion");
    // The IdP gives its assertions 5 minutes; an hour later they are long expired.
    let later = SystemTime::now() + Duration::from_secs(3600);
    assert_eq!(
        sp.consume(&response, slice::from_ref(&login.request_id), later),
        Err(SamlError::Expired)
    );
}

#[test]
fn a_response_from_the_future_is_refused() {
    let idp = Idp::new();
    let sp = sp_of(&idp);
    let login = sp.login_redirect("").unwrap();
    let response = idp.respond(&sp, &login, CAMILLE_INS, "assertion");
    let earlier = SystemTime::now() - Duration::from_secs(3600);
    assert_eq!(
        sp.consume(&response, slice::from_ref(&login.request_id), earlier),
        Err(SamlError::NotYetValid)
    );
}

#[test]
fn an_invalid_ins_is_refused() {
    let idp = Idp::new();
    let sp = sp_of(&idp);
    let login = sp.login_redirect("").unwrap();
    // Camille's INS with a wrong key.
    let response = idp.respond(&sp, &login, "284057511204338", "assertion");
    assert_eq!(
        sp.consume(
            &response,
            slice::from_ref(&login.request_id),
            SystemTime::now()
        ),
        Err(SamlError::InvalidIns)
    );
}

#[test]
fn a_response_to_a_request_not_outstanding_is_refused() {
    let idp = Idp::new();
    let sp = sp_of(&idp);
    let login = sp.login_redirect("").unwrap();
    let response = idp.respond(&sp, &login, CAMILLE_INS, "assertion");
    let other = sp.login_redirect("").unwrap();
    assert_eq!(
        sp.consume(&response, &[other.request_id], SystemTime::now()),
        Err(SamlError::UnknownRequest)
    );
    assert_eq!(
        sp.consume(&response, &[], SystemTime::now()),
        Err(SamlError::UnknownRequest)
    );
    // Refusals consume nothing: the right request still logs in.
    sp.consume(&response, &[login.request_id], SystemTime::now())
        .unwrap();
}

#[test]
fn a_response_signed_by_another_key_is_refused() {
    let idp = Idp::new();
    let impostor = Idp::new(); // same entity id, its own key
    let sp = sp_of(&idp);
    for sign in ["assertion", "response", "both"] {
        let login = sp.login_redirect("").unwrap();
        let response = impostor.respond(&sp, &login, CAMILLE_INS, sign);
        assert_eq!(
            sp.consume(
                &response,
                slice::from_ref(&login.request_id),
                SystemTime::now()
            ),
            Err(SamlError::BadSignature),
            "signed {sign}"
        );
    }
}

#[test]
fn a_response_signed_with_sha1_is_refused() {
    let idp = Idp::new();
    let sp = sp_of(&idp);
    let login = sp.login_redirect("").unwrap();
    let response = idp.respond_with(&sp, &login, CAMILLE_INS, &["--sign", "both", "--sha1"]);
    assert_eq!(
        sp.consume(
            &response,
            slice::from_ref(&login.request_id),
            SystemTime::now()
        ),
        Err(SamlError::BadSignature)
    );
}

#[test]
fn the_sp_metadata_names_the_entity_and_the_acs() {
    let idp = Idp::new();
    let sp = sp_of(&idp);
    let metadata = sp.metadata_xml();
    assert!(metadata.contains(r#"entityID="https://mshub.test/saml/metadata""#));
    assert!(metadata.contains(r#"Location="https://mshub.test/saml/acs""#));
    assert!(metadata.contains(r#"WantAssertionsSigned="true""#));
    assert_eq!(sp.idp_entity_id(), IDP_ENTITY_ID);
}
