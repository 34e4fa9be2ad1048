//! The agenda end to end (issue 8), with real peers on every side: the organizer's calendar
//! client is Python's smtplib submitting Thunderbird-shaped iMIP messages (RFC 6047) over TLS
//! with AUTH; the patient is curl on the web inbox; the organizer's mail client reading the
//! patient's answer is imaplib, and an independent iCalendar parser (Python's `icalendar`)
//! reads that answer and the patient's private feed.
//!
//! Needs python3 with `icalendar` (`scripts/install-deps --tests`); a missing one fails the
//! test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::support::*;

const CAMILLE_INS: &str = "284057511204339";
const SUMMARY: &str = "Consultation de suivi";

const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

fn py(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/py")
        .join(script)
}

fn require_icalendar() {
    let ok = Command::new("python3")
        .args(["-c", "import icalendar"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "no python3 with the `icalendar` package: run `scripts/install-deps --tests`"
    );
}

/// Civil date (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A local wall-clock time `days` from today, as the organizer's client writes it
/// (`DTSTART;TZID=Europe/Paris:…`), and as the French page should show it.
struct Local {
    ical: String,
    shown: String,
}

fn local_in(days: i64, hour: u32, minute: u32) -> Local {
    let (y, m, d) = civil(now_unix().div_euclid(86_400) + days);
    Local {
        ical: format!("{y:04}{m:02}{d:02}T{hour:02}{minute:02}00"),
        shown: format!("{d} {} {y} à {hour:02}:{minute:02}", MONTHS[m as usize - 1]),
    }
}

/// RFC 5545 §3.3.5 UTC date-time, `offset_secs` from now.
fn dtstamp(offset_secs: i64) -> String {
    let t = now_unix() + offset_secs;
    let (y, m, d) = civil(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        s / 3600,
        (s % 3600) / 60,
        s % 60
    )
}

/// One version of the event, as the organizer's calendar sends it.
struct Event<'a> {
    method: &'a str,
    uid: &'a str,
    sequence: u32,
    dtstamp: String,
    start: &'a Local,
    end: &'a Local,
    location: &'a str,
    /// Unique per message: the inbox row the test opens is found by it.
    subject: &'a str,
    message_id: &'a str,
}

/// A Thunderbird/Lightning-shaped iMIP message (agenda/tests/fixtures/thunderbird-request.eml):
/// multipart/mixed > multipart/alternative (text/plain + 8bit `text/calendar; method=…`), and
/// the same calendar again as a base64 `invite.ics` attachment.
fn thunderbird_message(e: &Event<'_>) -> Vec<u8> {
    let status = if e.method == "CANCEL" {
        "STATUS:CANCELLED\r\n"
    } else {
        ""
    };
    let calendar = format!(
        "BEGIN:VCALENDAR\r\n\
PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN\r\n\
VERSION:2.0\r\n\
METHOD:{method}\r\n\
BEGIN:VTIMEZONE\r\n\
TZID:Europe/Paris\r\n\
X-LIC-LOCATION:Europe/Paris\r\n\
BEGIN:DAYLIGHT\r\n\
TZOFFSETFROM:+0100\r\n\
TZOFFSETTO:+0200\r\n\
TZNAME:CEST\r\n\
DTSTART:19700329T020000\r\n\
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\n\
END:DAYLIGHT\r\n\
BEGIN:STANDARD\r\n\
TZOFFSETFROM:+0200\r\n\
TZOFFSETTO:+0100\r\n\
TZNAME:CET\r\n\
DTSTART:19701025T030000\r\n\
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\n\
END:STANDARD\r\n\
END:VTIMEZONE\r\n\
BEGIN:VEVENT\r\n\
CREATED:{stamp}\r\n\
LAST-MODIFIED:{stamp}\r\n\
DTSTAMP:{stamp}\r\n\
UID:{uid}\r\n\
SUMMARY:{SUMMARY}\r\n\
ORGANIZER;CN=Dr Jean Martin:mailto:{martin}\r\n\
ATTENDEE;RSVP=TRUE;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT;CUTYPE=INDIVIDUAL:\r\n \
mailto:{camille}\r\n\
DTSTART;TZID=Europe/Paris:{start}\r\n\
DTEND;TZID=Europe/Paris:{end}\r\n\
LOCATION:{location}\r\n\
DESCRIPTION:Apporter les résultats d'analyses.\r\n\
SEQUENCE:{sequence}\r\n\
{status}\
TRANSP:OPAQUE\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n",
        method = e.method,
        stamp = e.dtstamp,
        uid = e.uid,
        martin = MARTIN.0,
        camille = CAMILLE.0,
        start = e.start.ical,
        end = e.end.ical,
        location = e.location,
        sequence = e.sequence,
    );
    let attachment = base64::engine::general_purpose::STANDARD.encode(calendar.as_bytes());
    let attachment: Vec<&str> = attachment
        .as_bytes()
        .chunks(72)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let text = if e.method == "CANCEL" {
        "Cet événement a été annulé."
    } else {
        "Vous avez été invité(e) à un événement."
    };
    format!(
        "From: Dr Jean Martin <{martin}>\r\n\
To: {camille}\r\n\
Subject: {subject}\r\n\
Date: Mon, 04 Jan 2027 09:00:00 +0100\r\n\
Message-ID: <{message_id}>\r\n\
MIME-Version: 1.0\r\n\
User-Agent: Mozilla Thunderbird\r\n\
Content-Type: multipart/mixed; boundary=\"------------tbMixed01\"\r\n\
\r\n\
This is a multi-part message in MIME format.\r\n\
--------------tbMixed01\r\n\
Content-Type: multipart/alternative; boundary=\"------------tbAlt01\"\r\n\
\r\n\
--------------tbAlt01\r\n\
Content-Type: text/plain; charset=UTF-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
{text}\r\n\
{SUMMARY}, {start} (Europe/Paris)\r\n\
\r\n\
--------------tbAlt01\r\n\
Content-Type: text/calendar; charset=UTF-8; method={method}\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
{calendar}\
\r\n\
--------------tbAlt01--\r\n\
\r\n\
--------------tbMixed01\r\n\
Content-Type: application/ics; name=\"invite.ics\"\r\n\
Content-Disposition: attachment; filename=\"invite.ics\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
{attachment}\r\n\
--------------tbMixed01--\r\n",
        martin = MARTIN.0,
        camille = CAMILLE.0,
        subject = e.subject,
        message_id = e.message_id,
        start = e.start.shown,
        method = e.method,
        attachment = attachment.join("\r\n"),
    )
    .into_bytes()
}

/// dr.martin's calendar client sends `e` to Camille: smtplib, implicit TLS, AUTH.
fn martin_sends(hub: &Instance, e: &Event<'_>) {
    submit(hub, MARTIN, CAMILLE.0, &thunderbird_message(e));
}

/// Runs tests/e2e/py/itip_reply.py and parses the JSON it prints.
fn itip(args: &[&str]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(py("itip_reply.py"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.code() != Some(3),
        "{}: run `scripts/install-deps --tests`",
        text(&out.stderr)
    );
    assert!(
        out.status.success(),
        "itip_reply.py {args:?} failed: {}{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("itip_reply.py printed no JSON ({e}): {}", text(&out.stdout)))
}

/// A browser: curl with a cookie jar, never following redirects.
struct Browser {
    ca: PathBuf,
    port: u16,
    jar: tempfile::TempDir,
}

impl Browser {
    /// GET, or POST of `form` (urlencoded) when given.
    fn request(&self, path: &str, form: Option<&[(&str, &str)]>) -> HttpReply {
        let headers = self.jar.path().join("headers");
        let body = self.jar.path().join("body");
        let jar = self.jar.path().join("cookies");
        let mut cmd = Command::new("curl");
        cmd.args(["--silent", "--show-error", "--max-time", "30", "--cacert"])
            .arg(&self.ca)
            .arg("--cookie")
            .arg(&jar)
            .arg("--cookie-jar")
            .arg(&jar)
            .arg("--dump-header")
            .arg(&headers)
            .arg("--output")
            .arg(&body)
            .args(["--write-out", "%{http_code}"]);
        if let Some(form) = form {
            cmd.args(["--data", ""]);
            for (name, value) in form {
                cmd.arg("--data-urlencode").arg(format!("{name}={value}"));
            }
        }
        let out = cmd
            .arg(format!("https://127.0.0.1:{}{path}", self.port))
            .stdin(Stdio::null())
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "curl failed: {}", text(&out.stderr));
        HttpReply {
            status: text(&out.stdout).trim().parse().expect("an HTTP status"),
            headers: std::fs::read_to_string(&headers)
                .unwrap()
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect(),
            body: std::fs::read(&body).unwrap_or_default(),
        }
    }

    /// A page that must be there: its HTML.
    fn page(&self, path: &str) -> String {
        let reply = self.request(path, None);
        assert_eq!(reply.status, 200, "GET {path}: {reply:?}");
        text(&reply.body)
    }

    fn log_in(&self, login: &str, password: &str) {
        let form = self.page("/login");
        let token = csrf_field(&form);
        let signed_in = self.request(
            "/login",
            Some(&[("login", login), ("password", password), ("_csrf", &token)]),
        );
        assert_eq!(signed_in.status, 303, "login: {signed_in:?}");
        assert_eq!(signed_in.header("location"), Some("/"));
    }
}

/// The `_csrf` hidden field of a page.
fn csrf_field(html: &str) -> String {
    let marker = r#"name="_csrf" value=""#;
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no _csrf field in:\n{html}"));
    let rest = &html[at + marker.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// The `/m/<mailbox>/<uid>` link of the inbox row whose subject is `subject`.
fn message_link(inbox: &str, subject: &str) -> Option<String> {
    inbox.match_indices(r#"href="/m/"#).find_map(|(at, _)| {
        let rest = &inbox[at + r#"href=""#.len()..];
        let link = &rest[..rest.find('"')?];
        let label = &rest[rest.find('>')? + 1..];
        let label = &label[..label.find('<')?];
        (label.trim() == subject && !link.contains("/part/")).then(|| link.to_string())
    })
}

/// The "Classement automatique" list of the inbox message whose subject is `subject`, as
/// the patient reads it (waits for the delivery and the filing).
fn filing_of(web: &Browser, subject: &str) -> String {
    let mut inbox = String::new();
    let delivered = poll(Duration::from_secs(20), Duration::from_millis(250), || {
        inbox = web.page("/");
        message_link(&inbox, subject).is_some()
    });
    assert!(delivered, "{subject:?} is not in the inbox:\n{inbox}");
    let link = message_link(&inbox, subject).unwrap();
    let mut message = String::new();
    let filed = poll(Duration::from_secs(20), Duration::from_millis(250), || {
        message = web.page(&link);
        message.contains("Classement automatique")
    });
    assert!(filed, "no filing section on {link}:\n{message}");
    let filing = &message[message.find("Classement automatique").unwrap()..];
    let filing = &filing[..filing.find("</ul>").unwrap_or(filing.len())];
    println!("filing of {subject:?}, on {link}: {filing}");
    filing.to_string()
}

/// The text of `section aria-labelledby="<id>"` on the agenda page (empty if absent).
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let Some(at) = html.find(&format!(r#"aria-labelledby="{id}""#)) else {
        return "";
    };
    let rest = &html[at..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

/// The `<time datetime>` attribute (UTC) in `html` right before `shown`.
fn utc_attribute_before(html: &str, shown: &str) -> String {
    let at = html
        .find(shown)
        .unwrap_or_else(|| panic!("{shown:?} not in:\n{html}"));
    let before = &html[..at];
    let attr = r#"datetime=""#;
    let start = before.rfind(attr).expect("a <time datetime>") + attr.len();
    before[start..start + before[start..].find('"').unwrap()].to_string()
}

/// Polls the agenda page until `check` holds; panics with the last page if it never does.
fn agenda_until(web: &Browser, what: &str, check: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    let ok = poll(Duration::from_secs(20), Duration::from_millis(250), || {
        last = web.page("/agenda");
        check(&last)
    });
    assert!(ok, "the agenda page never showed {what}:\n{last}");
    last
}

#[test]
fn an_invitation_by_mail_is_updated_cancelled_and_answered_to_the_organizers_mailbox() {
    require_icalendar();
    let mut hub = Instance::demo();
    let port = hub.https_port();
    let (_, imaps) = hub.imap_ports();
    let web = Browser {
        ca: hub.ca.clone(),
        port,
        jar: tempfile::tempdir().unwrap(),
    };
    let uid = format!("e2e-agenda-{}@hopital.mshub.test", now_unix());

    // 1. The invitation: in 30 days at 10:00 Paris time.
    let (start, end) = (local_in(30, 10, 0), local_in(30, 10, 30));
    martin_sends(
        &hub,
        &Event {
            method: "REQUEST",
            uid: &uid,
            sequence: 0,
            dtstamp: dtstamp(-7200),
            start: &start,
            end: &end,
            location: "Hôpital\\, bâtiment B",
            subject: "Invitation: Consultation de suivi",
            message_id: "agenda-e2e-0@hopital.mshub.test",
        },
    );

    // 2. Camille sees it, in Paris time, waiting for her answer.
    web.log_in(CAMILLE_INS, CAMILLE.1);
    let page = agenda_until(&web, "the invitation", |p| p.contains(SUMMARY));
    let upcoming = section(&page, "h-upcoming");
    assert!(upcoming.contains(SUMMARY), "{upcoming}");
    assert!(
        upcoming.contains(&start.shown),
        "not {}:\n{upcoming}",
        start.shown
    );
    assert!(upcoming.contains("Hôpital, bâtiment B"), "{upcoming}");
    assert!(
        upcoming.contains("Organisé par Dr Jean Martin"),
        "{upcoming}"
    );
    assert!(upcoming.contains("Réponse attendue"), "{upcoming}");
    assert!(
        upcoming.contains(r#"action="/agenda/respond""#),
        "{upcoming}"
    );
    // Inline and as invite.ics: one event, filed once.
    let filing = filing_of(&web, "Invitation: Consultation de suivi");
    assert_eq!(
        filing.matches("<li").count(),
        1,
        "one event reported once:\n{filing}"
    );
    assert!(
        filing.contains("Agenda : rendez-vous « Consultation de suivi » ajouté à l'agenda"),
        "{filing}"
    );

    // 3. An update moves it (SEQUENCE 1, RFC 5546 §2.1.4)…
    let (moved, moved_end) = (local_in(31, 14, 30), local_in(31, 15, 0));
    martin_sends(
        &hub,
        &Event {
            method: "REQUEST",
            uid: &uid,
            sequence: 1,
            dtstamp: dtstamp(-3600),
            start: &moved,
            end: &moved_end,
            location: "Cabinet du Dr Martin",
            subject: "Invitation mise a jour: Consultation de suivi",
            message_id: "agenda-e2e-1@hopital.mshub.test",
        },
    );
    let page = agenda_until(&web, "the new time", |p| p.contains(&moved.shown));
    let upcoming = section(&page, "h-upcoming").to_string();
    assert!(
        !upcoming.contains(&start.shown),
        "the old time is still shown:\n{upcoming}"
    );
    assert!(upcoming.contains("Cabinet du Dr Martin"), "{upcoming}");
    assert!(upcoming.contains("Réponse attendue"), "{upcoming}");
    let moved_utc = utc_attribute_before(&upcoming, &moved.shown);

    // …and a stale version (SEQUENCE 0, older DTSTAMP), arriving late, changes nothing.
    let (stale, stale_end) = (local_in(32, 16, 0), local_in(32, 16, 30));
    let stale_subject = "Invitation (ancienne version): Consultation de suivi";
    martin_sends(
        &hub,
        &Event {
            method: "REQUEST",
            uid: &uid,
            sequence: 0,
            dtstamp: dtstamp(-10_800),
            start: &stale,
            end: &stale_end,
            location: "Ancienne adresse",
            subject: stale_subject,
            message_id: "agenda-e2e-stale@hopital.mshub.test",
        },
    );
    // The stale message is delivered to her inbox; its page says why it was not filed.
    let filing = filing_of(&web, stale_subject);
    assert!(
        filing.contains("Agenda : non classé") && filing.contains("périmée"),
        "the stale update's filing failure is not shown:\n{filing}"
    );
    let page = web.page("/agenda");
    let upcoming = section(&page, "h-upcoming");
    assert!(
        upcoming.contains(&moved.shown) && upcoming.contains("Cabinet du Dr Martin"),
        "the stale update changed the appointment:\n{upcoming}"
    );
    assert!(
        !upcoming.contains(&stale.shown) && !upcoming.contains("Ancienne adresse"),
        "the stale update was applied:\n{upcoming}"
    );

    // 4. Camille accepts; dr.martin's mail client receives the iTIP REPLY.
    let token = csrf_field(&page);
    let accepted = web.request(
        "/agenda/respond",
        Some(&[("_csrf", &token), ("uid", &uid), ("answer", "accept")]),
    );
    assert_eq!(accepted.status, 303, "accept: {}", text(&accepted.body));
    assert_eq!(accepted.header("location"), Some("/agenda?done=accepted"));
    let page = web.page("/agenda");
    assert!(
        section(&page, "h-upcoming").contains("Vous avez accepté"),
        "{page}"
    );

    let reply = itip(&[
        "reply",
        "--port",
        &imaps.to_string(),
        "--cafile",
        hub.ca.to_str().unwrap(),
        "--user",
        MARTIN.0,
        "--password",
        MARTIN.1,
    ]);
    println!("REPLY in dr.martin's INBOX: {reply:#}");
    let calendar = &reply["calendar"];
    assert_eq!(calendar["method"], "REPLY", "{reply:#}");
    let events = calendar["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{reply:#}");
    let event = &events[0];
    assert_eq!(event["uid"], uid.as_str(), "{reply:#}");
    assert_eq!(event["sequence"], 1, "{reply:#}");
    assert_eq!(event["organizer"], MARTIN.0, "{reply:#}");
    // RFC 5546 §3.2.3: exactly one ATTENDEE, the one replying.
    let attendees = event["attendees"].as_array().expect("attendees");
    assert_eq!(attendees.len(), 1, "{reply:#}");
    assert_eq!(attendees[0]["address"], CAMILLE.0, "{reply:#}");
    assert_eq!(attendees[0]["partstat"], "ACCEPTED", "{reply:#}");
    assert_eq!(
        event["dtstart_utc"],
        moved_utc.as_str(),
        "the REPLY's DTSTART is not the appointment's: {reply:#}"
    );
    assert!(
        reply["in_reply_to"]
            .as_str()
            .unwrap_or("")
            .contains("agenda-e2e-"),
        "the REPLY does not thread with an invitation: {reply:#}"
    );

    // 5. dr.martin cancels (SEQUENCE 2): shown as cancelled, nothing left to answer.
    martin_sends(
        &hub,
        &Event {
            method: "CANCEL",
            uid: &uid,
            sequence: 2,
            dtstamp: dtstamp(0),
            start: &moved,
            end: &moved_end,
            location: "Cabinet du Dr Martin",
            subject: "Annulation: Consultation de suivi",
            message_id: "agenda-e2e-2@hopital.mshub.test",
        },
    );
    let page = agenda_until(&web, "the cancellation", |p| {
        section(p, "h-cancelled").contains(SUMMARY)
    });
    let cancelled = section(&page, "h-cancelled");
    assert!(
        cancelled.contains(&moved.shown) && cancelled.contains("annulé par l'organisateur"),
        "{cancelled}"
    );
    assert!(
        !page.contains(r#"action="/agenda/respond""#),
        "accept/decline still offered for a cancelled appointment:\n{page}"
    );
    let filing = filing_of(&web, "Annulation: Consultation de suivi");
    assert!(
        filing.contains("Agenda : rendez-vous « Consultation de suivi » annulé"),
        "{filing}"
    );

    // 6. The private feed, as a phone subscribes to it: no cookies, the URL is the credential.
    let feed_at = page
        .find("/agenda/feed/")
        .expect("the feed URL on the page");
    let feed_path = &page[feed_at..feed_at + page[feed_at..].find(".ics").unwrap() + 4];
    let feed = curl(&hub.ca, port, feed_path, None);
    assert_eq!(feed.status, 200, "{feed:?}");
    assert!(
        feed.header("content-type")
            .is_some_and(|c| c.starts_with("text/calendar")),
        "{:?}",
        feed.headers
    );
    assert!(contains(&feed.body, &uid), "{}", text(&feed.body));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &feed.body).unwrap();
    let parsed = itip(&["feed", file.path().to_str().unwrap()]);
    println!("feed: {parsed:#}");
    assert_eq!(parsed["method"], "PUBLISH", "{parsed:#}");
    let ours: Vec<&serde_json::Value> = parsed["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["uid"] == uid.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{parsed:#}");
    assert_eq!(ours[0]["status"], "CANCELLED", "{parsed:#}");
    assert_eq!(ours[0]["summary"], SUMMARY, "{parsed:#}");
    assert_eq!(
        ours[0]["dtstart_utc"],
        moved_utc.as_str(),
        "the feed and the page disagree on the time: {parsed:#}"
    );
    hub.stop();
}
