//! E-prescriptions (ordonnances) on the web: the patient's list and detail with the QR code
//! (inline SVG) and the PDF copy, with what was dispensed when and by whom; and the page the
//! QR code opens for a pharmacist, `/ordonnance/<id>?h=…&s=…`, which checks the link and
//! records a dispensing per line.
//!
//! A pharmacist signs in with the web login like a patient, with the professional address
//! and its password: the login page accepts a professional only when it was sent there by a
//! prescription's link (`next=/ordonnance/…`), and such a session opens no patient page. Any
//! other profession gets a clear refusal here, audited like every scan.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;

use mshub_directory::Account;
use mshub_prescription::model::day;
use mshub_prescription::qr::Matrix;
use mshub_prescription::{Give, Outcome, Prescriptions, Record, Refusal, Status};

use crate::download::disposition;
use crate::format::datetime_fr;
use crate::frame::{blocking, error_page, internal, page, see_other, App, Area, SignedIn};
use crate::session::{self, same_secret, Session};
use crate::Webmail;

fn service(app: &Webmail) -> Result<std::sync::Arc<Prescriptions>, Response> {
    app.prescriptions
        .get()
        .cloned()
        .ok_or_else(|| refusal_page(&Refusal::Disabled))
}

fn status_of(refusal: &Refusal) -> StatusCode {
    match refusal {
        Refusal::Forged | Refusal::NotPharmacist => StatusCode::FORBIDDEN,
        Refusal::UnknownId => StatusCode::NOT_FOUND,
        Refusal::Altered | Refusal::Conflict => StatusCode::CONFLICT,
        Refusal::Expired { .. } | Refusal::FullyDispensed => StatusCode::GONE,
        Refusal::Disabled => StatusCode::SERVICE_UNAVAILABLE,
        Refusal::Quantity(_) | Refusal::Nothing | Refusal::Invalid(_) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Refusal::Prescriber(_) | Refusal::Patient(_) => StatusCode::FORBIDDEN,
    }
}

fn refusal_page(refusal: &Refusal) -> Response {
    error_page(
        status_of(refusal),
        "Ordonnance refusée",
        &refusal.to_string(),
    )
}

fn outcome_page(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Refused(r) => refusal_page(&r),
        Outcome::Failed(e) => internal("prescription", &e),
    }
}

fn line_progress(record: &Record, i: usize) -> String {
    let Some(line) = record.prescription.lines.get(i) else {
        return String::new();
    };
    let state = record.lines.get(i).copied().unwrap_or_default();
    let mut s = format!(
        "Délivrances complètes : {} sur {}",
        state.fills_done,
        line.fills()
    );
    if state.current > 0 {
        s.push_str(&format!(
            " ; en cours : {} sur {}",
            state.current, line.quantity
        ));
    }
    s
}

fn prescription_facts(record: &Record) -> Markup {
    let p = &record.prescription;
    html! {
        dl class="meta" {
            dt { "Numéro" } dd { code { (p.id) } }
            dt { "Prescripteur" } dd {
                (p.prescriber.name) " — " (p.prescriber.profession)
                " (RPPS " (p.prescriber.rpps) ")"
            }
            dt { "Patient" } dd {
                (p.patient.name) ", né(e) le " (day::french(&p.patient.birth_date))
                " — INS " (p.patient.ins)
            }
            dt { "Date" } dd { (day::french(&p.date)) }
            dt { "Valable jusqu'au" } dd { (day::french(&p.valid_until)) " inclus" }
        }
    }
}

fn history(record: &Record) -> Markup {
    let p = &record.prescription;
    html! {
        h2 { "Délivrances" }
        @if record.history.is_empty() {
            p { "Rien n'a encore été délivré sur cette ordonnance." }
        } @else {
            ul class="plain dispensings" {
                @for d in record.history.iter().rev() {
                    li {
                        p {
                            strong { "Le " (datetime_fr(d.at)) } " par " (d.pharmacist_name)
                            " (" (d.pharmacist) ")"
                        }
                        ul {
                            @for l in &d.lines {
                                @let drug = p.lines.get(l.line).map_or("?", |x| x.drug.as_str());
                                li {
                                    "Ligne " (l.line + 1) " — " (drug) " : " (l.quantity)
                                    @if l.fill > 1 { " (renouvellement n° " (l.fill - 1) ")" }
                                    @if l.completed { " — délivrance complète" } @else { " — délivrance partielle" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

// ----- the patient -----

pub async fn list(State(app): App, who: SignedIn) -> Response {
    let rx = match service(&app) {
        Ok(rx) => rx,
        Err(_) => {
            return page(
                "Ordonnances",
                Some(&who),
                Area::Prescriptions,
                html! { p { "Les ordonnances sécurisées ne sont pas activées sur ce service." } },
            )
        }
    };
    let space = who.space.id;
    let records = match blocking(move || rx.of_patient(space)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return internal("prescriptions", &e),
        Err(r) => return r,
    };
    let now = mshub_store::now();
    page(
        "Ordonnances",
        Some(&who),
        Area::Prescriptions,
        html! {
            @if records.is_empty() {
                p { "Vous n'avez pas encore reçu d'ordonnance sécurisée." }
            } @else {
                table {
                    thead { tr { th { "Date" } th { "Prescripteur" } th { "État" } th { span class="visually-hidden" { "Ouvrir" } } } }
                    tbody {
                        @for r in &records {
                            @let p = &r.prescription;
                            tr {
                                td { (day::french(&p.date)) }
                                td { (p.prescriber.name) }
                                td { span class="tag" { (r.status(now).label_fr()) } }
                                td { a href={ "/ordonnances/" (p.id) } { "Voir l'ordonnance" } }
                            }
                        }
                    }
                }
            }
            p class="hint" {
                "Présentez le QR code de l'ordonnance (à l'écran ou imprimé) à votre pharmacien : "
                "il le scanne pour vérifier l'ordonnance et enregistrer ce qu'il vous délivre."
            }
        },
    )
}

/// One of the space's prescriptions and its QR code's URL. A relative reading through a
/// delegation is in the patient's access history (`prescription.read`, ground `delegate`).
async fn own_record(
    app: &std::sync::Arc<Webmail>,
    who: &SignedIn,
    id: String,
    part: &'static str,
) -> Result<(Record, String), Response> {
    let rx = service(app)?;
    let space = who.space.id;
    let found = blocking(move || {
        rx.of_patient_by_id(space, &id)
            .and_then(|r| r.map(|r| rx.url(&r).map(|u| (r, u))).transpose())
    })
    .await?;
    let (record, url) = match found {
        Ok(Some(v)) => v,
        Ok(None) => return Err(crate::frame::not_found()),
        Err(e) => return Err(internal("prescription", &e)),
    };
    if !who.is_owner() {
        app.store
            .audit(
                mshub_store::AuditEvent::new(
                    who.me.address.as_str(),
                    "prescription.read",
                    format!("prescription:{}", record.prescription.id),
                )
                .with_detail(format!("patient:{space} ground:delegate part:{part}")),
            )
            .map_err(|e| internal("audit", &e))?;
    }
    Ok((record, url))
}
pub async fn detail(State(app): App, who: SignedIn, Path(id): Path<String>) -> Response {
    let (record, url) = match own_record(&app, &who, id, "page").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let p = &record.prescription;
    let status = record.status(mshub_store::now());
    let qr = Matrix::new(&url).map(|m| m.svg("QR code de l'ordonnance, à présenter au pharmacien"));
    page(
        &format!("Ordonnance du {}", day::french(&p.date)),
        Some(&who),
        Area::Prescriptions,
        html! {
            p { span class="tag" { (status.label_fr()) } }
            @if status == Status::Expired {
                p class="error" { "Cette ordonnance a expiré : elle ne peut plus être délivrée." }
            }
            (prescription_facts(&record))
            @if let Some(svg) = qr {
                figure class="qr" {
                    (PreEscaped(svg))
                    figcaption { "À présenter à votre pharmacien." }
                }
            }
            p { a class="button" href={ "/ordonnances/" (p.id) "/pdf" } { "Télécharger l'ordonnance (PDF)" } }
            h2 { "Prescription" }
            ol class="prescription-lines" {
                @for (i, line) in p.lines.iter().enumerate() {
                    li {
                        p { strong { (line.drug) } }
                        p { "Posologie : " (line.dose) br; "Durée : " (line.duration) }
                        p class="meta" {
                            "Par délivrance : " (line.quantity)
                            @if line.renewals > 0 { " — à renouveler " (line.renewals) " fois" }
                            br; (line_progress(&record, i))
                        }
                    }
                }
            }
            (history(&record))
            p { a href="/ordonnances" { "Toutes mes ordonnances" } }
        },
    )
}

pub async fn pdf(State(app): App, who: SignedIn, Path(id): Path<String>) -> Response {
    let (record, url) = match own_record(&app, &who, id, "pdf").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let name = format!("ordonnance-{}.pdf", record.prescription.id);
    let bytes = match blocking(move || mshub_prescription::pdf::render(&record, &url)).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    (
        [
            (CONTENT_TYPE, "application/pdf".to_string()),
            (CONTENT_DISPOSITION, disposition("attachment", &name)),
        ],
        bytes,
    )
        .into_response()
}

// ----- the pharmacist -----

/// A signed-in account of any kind (the pharmacist's door): no session sends the browser to
/// the login page, which brings it back here.
pub struct Counter {
    pub session: Session,
    pub me: Account,
}

impl FromRequestParts<std::sync::Arc<Webmail>> for Counter {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &std::sync::Arc<Webmail>,
    ) -> Result<Self, Response> {
        let to_login = || {
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .filter(|_| parts.method == axum::http::Method::GET)
                .unwrap_or_default();
            if next.is_empty() {
                see_other("/login")
            } else {
                see_other(&format!(
                    "/login?{}",
                    serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default()
                ))
            }
        };
        let Some(token) = session::cookie(&parts.headers, session::COOKIE) else {
            return Err(to_login());
        };
        let Some(session) = app.sessions.get(token) else {
            return Err(to_login());
        };
        match app.directory.account(session.account) {
            Ok(Some(me)) if !me.disabled => Ok(Counter { session, me }),
            Ok(_) => {
                app.sessions.close(token);
                Err(to_login())
            }
            Err(e) => Err(internal("session account", &e)),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct Scanned {
    #[serde(default)]
    h: String,
    #[serde(default)]
    s: String,
}

fn counter_page(title: &str, who: &Counter, status: StatusCode, content: Markup) -> Response {
    let mut r = page(
        title,
        None,
        Area::None,
        html! {
            p class="meta" {
                "Connecté en tant que " (who.me.kind.display_name()) " (" (who.me.address) ")."
            }
            (content)
            form method="post" action="/logout" {
                (crate::csrf::field(&who.session.csrf))
                button type="submit" class="secondary" { "Se déconnecter" }
            }
        },
    );
    *r.status_mut() = status;
    r
}

fn dispensing_form(record: &Record, h: &str, s: &str, csrf: &str) -> Markup {
    let p = &record.prescription;
    html! {
        form method="post" action={ "/ordonnance/" (p.id) } {
            (crate::csrf::field(csrf))
            input type="hidden" name="h" value=(h);
            input type="hidden" name="s" value=(s);
            input type="hidden" name="version" value=(record.version());
            @for (i, line) in p.lines.iter().enumerate() {
                fieldset {
                    legend { "Ligne " (i + 1) " — " (line.drug) }
                    p { "Posologie : " (line.dose) br; "Durée : " (line.duration) }
                    p class="meta" {
                        "Par délivrance : " (line.quantity)
                        @if line.renewals > 0 { " — à renouveler " (line.renewals) " fois" }
                        br; (line_progress(record, i))
                    }
                    @if record.line_exhausted(i) {
                        p { strong { "Entièrement délivrée." } }
                    } @else {
                        @let remaining = record.remaining_in_fill(i);
                        label for={ "q" (i) } { "Quantité délivrée maintenant (reste " (remaining) " pour cette délivrance)" }
                        input type="number" id={ "q" (i) } name={ "q" (i) } min="0" max=(remaining) inputmode="numeric";
                        p {
                            input type="checkbox" id={ "c" (i) } name={ "c" (i) } value="1";
                            label class="inline" for={ "c" (i) } { "Délivrer tout le reste de cette délivrance" }
                        }
                    }
                }
            }
            p { button type="submit" { "Enregistrer la délivrance" } }
        }
    }
}

pub async fn scan(
    State(app): App,
    who: Counter,
    Path(id): Path<String>,
    Query(q): Query<Scanned>,
) -> Response {
    let rx = match service(&app) {
        Ok(rx) => rx,
        Err(r) => return r,
    };
    let me = who.me.clone();
    let (qid, h, s) = (id.clone(), q.h.clone(), q.s.clone());
    let scanned = match blocking(move || rx.scan(&me, &qid, &h, &s, mshub_store::now())).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let record = match scanned {
        Ok(record) => record,
        Err(Outcome::Refused(refusal)) => {
            return counter_page(
                "Ordonnance refusée",
                &who,
                status_of(&refusal),
                html! { p class="error" role="alert" { (refusal.to_string()) } },
            )
        }
        Err(Outcome::Failed(e)) => return internal("prescription scan", &e),
    };
    counter_page(
        "Ordonnance à délivrer",
        &who,
        StatusCode::OK,
        html! {
            p class="notice" role="status" {
                "Ordonnance authentique : la signature et le numéro ont été vérifiés. "
                "Elle est valable jusqu'au " (day::french(&record.prescription.valid_until)) " inclus."
            }
            (prescription_facts(&record))
            h2 { "Délivrance" }
            (dispensing_form(&record, &q.h, &q.s, &who.session.csrf))
            (history(&record))
        },
    )
}

/// The dispensing form: `q<i>` a quantity for line i, `c<i>` the rest of its dispensing.
fn gives_of(pairs: &[(String, String)], lines: usize) -> Result<Vec<(usize, Give)>, Refusal> {
    let mut gives: Vec<(usize, Give)> = Vec::new();
    for i in 0..lines {
        let q = pairs
            .iter()
            .find(|(k, _)| *k == format!("q{i}"))
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty());
        let all = pairs.iter().any(|(k, v)| *k == format!("c{i}") && v == "1");
        if all {
            gives.push((i, Give::Rest));
        } else if let Some(q) = q {
            let n = q.parse::<u32>().map_err(|_| {
                Refusal::Quantity(format!(
                    "ligne {} : « {} » n'est pas un nombre entier positif",
                    i + 1,
                    q.chars().take(20).collect::<String>()
                ))
            })?;
            gives.push((i, Give::Units(n)));
        }
    }
    Ok(gives)
}

pub async fn dispense(
    State(app): App,
    who: Counter,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let rx = match service(&app) {
        Ok(rx) => rx,
        Err(r) => return r,
    };
    let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Formulaire invalide",
            "Le formulaire n'a pas pu être lu.",
        );
    };
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if !same_secret(&field("_csrf"), &who.session.csrf) {
        return crate::csrf::forbidden();
    }
    let (h, s) = (field("h"), field("s"));
    let Ok(version) = field("version").parse::<usize>() else {
        return refusal_page(&Refusal::Conflict);
    };
    let gives = match gives_of(&pairs, mshub_prescription::order::MAX_LINES) {
        Ok(g) => g,
        Err(refusal) => {
            return counter_page(
                "Délivrance refusée",
                &who,
                status_of(&refusal),
                html! { p class="error" role="alert" { (refusal.to_string()) } (back_link(&id, &h, &s)) },
            )
        }
    };
    let me = who.me.clone();
    let (qid, qh, qs) = (id.clone(), h.clone(), s.clone());
    let done = match blocking(move || {
        rx.dispense(&me, &qid, &qh, &qs, version, &gives, mshub_store::now())
    })
    .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    match done {
        Ok((record, d)) => counter_page(
            "Délivrance enregistrée",
            &who,
            StatusCode::OK,
            html! {
                p class="notice" role="status" {
                    @if record.fully_dispensed() {
                        "Délivrance enregistrée. L'ordonnance est maintenant entièrement délivrée."
                    } @else {
                        "Délivrance enregistrée. Il reste à délivrer sur cette ordonnance."
                    }
                }
                ul {
                    @for l in &d.lines {
                        @let drug = record.prescription.lines.get(l.line).map_or("?", |x| x.drug.as_str());
                        li { "Ligne " (l.line + 1) " — " (drug) " : " (l.quantity)
                            @if l.completed { " (délivrance complète)" } @else { " (délivrance partielle)" } }
                    }
                }
                @if !record.fully_dispensed() { (back_link(&id, &h, &s)) }
                (prescription_facts(&record))
                (history(&record))
            },
        ),
        Err(Outcome::Refused(refusal)) => counter_page(
            "Délivrance refusée",
            &who,
            status_of(&refusal),
            html! { p class="error" role="alert" { (refusal.to_string()) } (back_link(&id, &h, &s)) },
        ),
        Err(other) => outcome_page(other),
    }
}

fn back_link(id: &str, h: &str, s: &str) -> Markup {
    let query = serde_urlencoded::to_string([("h", h), ("s", s)]).unwrap_or_default();
    let id: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    html! { p { a href={ "/ordonnance/" (id) "?" (query) } { "Revenir à l'ordonnance" } } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_gives_quantities_or_the_rest_per_line() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let g = gives_of(
            &pairs(&[("q0", "1"), ("q1", ""), ("c1", "1"), ("q2", " ")]),
            3,
        )
        .unwrap();
        assert_eq!(g, vec![(0, Give::Units(1)), (1, Give::Rest)]);
        let e = gives_of(&pairs(&[("q0", "-1")]), 1).unwrap_err();
        assert!(e.to_string().contains("ligne 1"), "{e}");
    }
}
