//! Findings 1 and 8: the relay port. A client that neither logs in nor shows a certificate
//! naming its domain may still deliver mail from a trusted domain, but nothing it sends is
//! filed, it cannot use the null sender, and it learns nothing of a patient space's state; a
//! client certificate of the trust space speaks only for the domains it names.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::federation::write_pki;
use crate::support::*;

const PEER: &str = "clinique.autre.test";

/// A CDA that claims Dr Martin wrote it and hides it from the patient: what a forger sends.
fn forged_cda(ins: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <id root="1.2.250.1.999.1" extension="FORGED-1"/>
  <code code="11502-2" codeSystem="2.16.840.1.113883.6.1" displayName="CR de biologie"/>
  <title>Résultats falsifiés</title>
  <effectiveTime value="20261201103000+0100"/>
  <confidentialityCode code="INVISIBLE_PATIENT" codeSystem="1.2.250.1.213.1.1.4.13"/>
  <recordTarget><patientRole>
    <id root="1.2.250.1.213.1.4.10" extension="{ins}"/>
  </patientRole></recordTarget>
  <author><time value="20261201103000+0100"/><assignedAuthor>
    <id root="1.2.250.1.71.4.2.1" extension="810000000001"/>
    <telecom value="mailto:{martin}"/>
    <assignedPerson><name><prefix>Dr</prefix><given>Jean</given><family>MARTIN</family></name></assignedPerson>
  </assignedAuthor></author>
  <component><structuredBody><component><section><title>Conclusion</title>
    <text>FORGED-CONTENT</text></section></component></structuredBody></component>
</ClinicalDocument>
"#,
        martin = MARTIN.0
    )
}

/// One SMTP transaction on the relay port over STARTTLS with Python's smtplib, optionally
/// presenting a client certificate. Prints one line per step: `STEP<TAB>CODE TEXT`.
const RELAY_PY: &str = r#"
import smtplib, ssl, sys
from email.message import EmailMessage
port, ca, cert, key, mail_from, rcpt, cda_path = sys.argv[1:8]
ctx = ssl.create_default_context(cafile=ca)
if cert:
    ctx.load_cert_chain(cert, key)
s = smtplib.SMTP("127.0.0.1", int(port), timeout=30)
s._host = "localhost"  # the name the hub's certificate carries, checked by starttls()
s.ehlo("relay-client.test")
s.starttls(context=ctx)
s.ehlo("relay-client.test")
def step(name, cmd):
    code, text = s.docmd(cmd)
    print(name + "\t" + str(code) + " " + text.decode(errors="replace").replace("\n", " "))
    return code
step("null", "MAIL FROM:<>")
step("rset", "RSET")
if step("mail", "MAIL FROM:<" + mail_from + ">") == 250:
    if step("rcpt", "RCPT TO:<" + rcpt + ">") == 250:
        m = EmailMessage()
        m["From"] = mail_from
        m["To"] = rcpt
        m["Subject"] = "Resultats"
        m["Message-ID"] = "<forged-1@" + mail_from.split("@")[1] + ">"
        m.set_content("Veuillez trouver les resultats.")
        with open(cda_path, "rb") as f:
            m.add_attachment(f.read(), maintype="text", subtype="xml", filename="cr.xml")
        code = step("data", "DATA")
        if code == 354:
            s.send(m.as_bytes().replace(b"\n", b"\r\n") + b"\r\n.\r\n")
            code, text = s.getreply()
            print("end\t" + str(code) + " " + text.decode(errors="replace"))
s.quit()
"#;

fn relay(hub: &Instance, cert: Option<&Path>, from: &str, rcpt: &str) -> Transcript {
    let cda = hub.dir.join("forged-cda.xml");
    std::fs::write(&cda, forged_cda(CAMILLE.0.split('@').next().unwrap())).unwrap();
    let (cert, key) = match cert {
        Some(dir) => (
            dir.join("tls/cert.pem").display().to_string(),
            dir.join("tls/key.pem").display().to_string(),
        ),
        None => (String::new(), String::new()),
    };
    let out = Command::new("python3")
        .args(["-c", RELAY_PY])
        .args([
            &hub.ports.relay.to_string(),
            hub.ca.to_str().unwrap(),
            &cert,
            &key,
            from,
            rcpt,
            cda.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    Transcript(
        text(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(s, r)| (s.to_string(), r.to_string()))
            .collect(),
    )
}

/// The demo, with `clinique.autre.test` trusted under `tls`, and (when `peer_ca` is given)
/// client certificates of that CA verified on the relay.
fn hub_trusting(tls: &str, peer_ca: Option<&Path>) -> Instance {
    let config = peer_ca
        .map(|ca| format!("[mta]\npeer_ca = \"{}\"\n", ca.display()))
        .unwrap_or_default();
    let mut hub = Instance::demo_with(&config, &[]);
    hub.stop();
    hub.cli(&["domain", "trust", PEER, "--tls", tls], "");
    hub.start();
    hub
}

/// Camille names dr.martin her médecin traitant on her page "Accès des professionnels": he
/// then reads every document of her space, masked ones included (whatever a forger's
/// document claims, the API would show it to him).
fn martin_is_camilles_doctor(hub: &mut Instance) {
    let port = hub.https_port();
    name_professional(&signed_in(hub, port, CAMILLE), MARTIN.0, "referring", &[]);
}

fn documents_of_camille(hub: &mut Instance) -> serde_json::Value {
    let port = hub.https_port();
    let ins = CAMILLE.0.split('@').next().unwrap();
    let reply = curl(
        &hub.ca,
        port,
        &format!("/api/v1/patients/{ins}/documents"),
        Some(MARTIN),
    );
    assert_eq!(reply.status, 200, "{}", text(&reply.body));
    reply.json()
}

#[test]
fn an_unauthenticated_relay_client_files_nothing_and_cannot_use_the_null_sender() {
    let mut hub = hub_trusting("required", None);
    martin_is_camilles_doctor(&mut hub);
    let t = relay(&hub, None, &format!("secretariat@{PEER}"), CAMILLE.0);
    // Finding 1: `MAIL FROM:<>` from a client nothing vouches for.
    assert!(t.reply("null").starts_with("550 5.7.1"), "{t:?}");
    // Mail from a trusted domain still flows: delivered...
    assert!(t.reply("end").starts_with("250"), "{t:?}");
    // ...but nothing in it is filed (the forged CDA is not in the vault, under any author).
    std::thread::sleep(Duration::from_secs(2));
    let docs = documents_of_camille(&mut hub);
    assert!(
        !docs.to_string().contains("falsifi"),
        "a document from an unauthenticated client was filed: {docs}"
    );
    hub.stop();
    let inbox = hub.inbox(CAMILLE.0);
    assert!(
        inbox.iter().any(|m| contains(m, "forged-1@")),
        "the message itself is delivered"
    );
}

#[test]
fn an_unauthenticated_client_learns_nothing_of_a_closed_space() {
    let mut hub = hub_trusting("required", None);
    hub.stop();
    hub.cli(&["account", "close", CAMILLE.0], "");
    hub.start();
    let closed = relay(&hub, None, &format!("secretariat@{PEER}"), CAMILLE.0);
    let unknown = relay(
        &hub,
        None,
        &format!("secretariat@{PEER}"),
        "166014000000017@patient.mshub.test",
    );
    assert!(closed.reply("rcpt").starts_with("550 5.1.1"), "{closed:?}");
    // One identical answer, but for the address it names.
    assert_eq!(
        closed.reply("rcpt").replace(CAMILLE.0, "X"),
        unknown
            .reply("rcpt")
            .replace("166014000000017@patient.mshub.test", "X"),
    );
}

#[test]
fn a_client_certificate_speaks_only_for_the_domains_it_names() {
    let tmp = tempfile::tempdir().unwrap();
    let (ours, stranger) = (tmp.path().join("peer"), tmp.path().join("stranger"));
    // Both certificates come from the trust space's CA; only one names the sender's domain.
    write_pki(&[
        (ours.as_path(), PEER),
        (stranger.as_path(), "other.autre.test"),
    ]);
    let mut hub = hub_trusting("mutual-tls", Some(&ours.join("ca.pem")));
    martin_is_camilles_doctor(&mut hub);
    // Finding 8: the stranger's certificate is valid, but not for clinique.autre.test.
    let t = relay(&hub, Some(&stranger), &format!("labo@{PEER}"), CAMILLE.0);
    assert!(t.reply("mail").starts_with("550 5.7.1"), "{t:?}");
    assert!(t.reply("null").starts_with("550 5.7.1"), "{t:?}");
    // The peer's own certificate names the domain: accepted, authenticated, filed — under the
    // sender's identity, the document's own claim kept as declared, visible to the patient.
    let t = relay(&hub, Some(&ours), &format!("labo@{PEER}"), CAMILLE.0);
    assert!(t.reply("end").starts_with("250"), "{t:?}");
    let mut listed = serde_json::Value::Null;
    let found = poll(Duration::from_secs(20), Duration::from_millis(300), || {
        listed = documents_of_camille(&mut hub);
        listed.to_string().contains("falsifi")
    });
    assert!(
        found,
        "the authenticated peer's document is filed: {listed}"
    );
    let text = listed.to_string();
    assert!(text.contains(&format!("labo@{PEER}")), "{text}");
    assert!(
        text.contains("déclaré"),
        "the document's author is declared: {text}"
    );
}
