//! The patient's profile: identity as the directory knows it, and the measurements the
//! connected apps added (weight, blood glucose, blood pressure, heart rate, steps), as a table
//! and a chart per kind drawn on the server in SVG (no script, no style attribute).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use maud::{html, Markup};

use mshub_catalogue::{Measurement, MeasurementKind};
use mshub_directory::AccountKind;

use crate::format::{date_fr, datetime_fr, day_fr, iso_utc};
use crate::frame::{blocking, internal, page, Area, SignedIn};

/// "12 mai 1984", as every page writes dates (the ISO form only when the date is impossible).
fn birth_fr(b: &mshub_directory::BirthDate) -> String {
    match mshub_agenda::NaiveDate::from_ymd_opt(
        i32::from(b.year),
        u32::from(b.month),
        u32::from(b.day),
    ) {
        Some(d) => day_fr(d),
        None => b.to_string(),
    }
}

/// Measurements shown per kind in the table (the newest).
const TABLE_ROWS: usize = 30;

fn kind_fr(kind: MeasurementKind) -> &'static str {
    kind.label_fr()
}

/// One decimal, with the French decimal comma.
fn decimal_fr(v: f64) -> String {
    format!("{v:.1}").replace('.', ",")
}

fn value_fr(m: &Measurement) -> String {
    let num = |v: f64| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}").replace('.', ",")
        }
    };
    match m.value2 {
        Some(v2) => format!("{}/{} {}", num(m.value), num(v2), m.unit),
        None => format!("{} {}", num(m.value), m.unit),
    }
}

/// A line chart of `points` (time, value[, value2]) in a 600×200 box, with its extremes
/// labelled; described for screen readers by its `title` and the table that follows it.
fn chart(kind: MeasurementKind, points: &[&Measurement]) -> Markup {
    let title = kind.label_fr();
    const W: f64 = 600.0;
    const H: f64 = 200.0;
    const PAD: f64 = 40.0;
    if points.len() < 2 {
        return html! {};
    }
    let t0 = points.iter().map(|m| m.at).min().unwrap_or(0) as f64;
    let t1 = points.iter().map(|m| m.at).max().unwrap_or(0) as f64;
    let values = points
        .iter()
        .flat_map(|m| std::iter::once(m.value).chain(m.value2));
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let span_t = (t1 - t0).max(1.0);
    let span_v = (hi - lo).max(1e-9);
    let x = |t: i64| PAD + (t as f64 - t0) / span_t * (W - 2.0 * PAD);
    let y = |v: f64| H - PAD + -(v - lo) / span_v * (H - 2.0 * PAD);
    let line = |second: bool| -> String {
        points
            .iter()
            .filter_map(|m| {
                let v = if second { m.value2? } else { m.value };
                Some(format!("{:.1},{:.1}", x(m.at), y(v)))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let has_second = points.iter().any(|m| m.value2.is_some());
    html! {
        svg class="chart" viewBox={ "0 0 " (W) " " (H) } role="img" aria-labelledby={ "chart-" (kind.name()) } {
            title id={ "chart-" (kind.name()) } { "Évolution : " (title) }
            line x1=(PAD) y1=(H - PAD) x2=(W - PAD) y2=(H - PAD) stroke="#555" {}
            line x1=(PAD) y1=(PAD) x2=(PAD) y2=(H - PAD) stroke="#555" {}
            text x="4" y=(PAD + 4.0) font-size="12" fill="#1b1b1b" { (decimal_fr(hi)) }
            text x="4" y=(H - PAD) font-size="12" fill="#1b1b1b" { (decimal_fr(lo)) }
            text x=(PAD) y=(H - 12.0) font-size="12" fill="#1b1b1b" { (date_fr(t0 as i64)) }
            text x=(W - PAD) y=(H - 12.0) font-size="12" fill="#1b1b1b" text-anchor="end" { (date_fr(t1 as i64)) }
            polyline points=(line(false)) fill="none" stroke="#0b4f9c" stroke-width="2" {}
            @if has_second {
                polyline points=(line(true)) fill="none" stroke="#a4161a" stroke-width="2" stroke-dasharray="6 3" {}
            }
        }
    }
}

pub async fn show(State(app): crate::frame::App, who: SignedIn) -> Response {
    let patient = who.space.id;
    let loaded = blocking(move || app.catalogue.measurements(patient)).await;
    let measurements = match loaded {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return internal("measurements", &e),
        Err(r) => return r,
    };
    let mut by_kind: BTreeMap<&'static str, (MeasurementKind, Vec<&Measurement>)> = BTreeMap::new();
    for m in &measurements {
        by_kind
            .entry(m.kind.name())
            .or_insert((m.kind, Vec::new()))
            .1
            .push(m);
    }
    let content = html! {
        section aria-labelledby="h-identity" {
            h2 id="h-identity" { "Identité" }
            dl class="meta" {
                dt { "Nom" } dd { (who.space.kind.display_name()) }
                @if let AccountKind::Patient { ins, birth_date, .. } = &who.space.kind {
                    dt { "INS" } dd { (ins.as_str()) }
                    dt { "Date de naissance" } dd { (birth_fr(birth_date)) }
                }
                dt { "Messagerie santé" } dd class="address" { (who.space.address) }
            }
        }
        section aria-labelledby="h-medical" {
            h2 id="h-medical" { "Mon profil médical" }
            p { "Antécédents, allergies, traitements, vaccinations, directives anticipées et personnes à prévenir : ce que vous souhaitez que les professionnels qui vous soignent sachent." }
            p { a class="button" href="/profile/medical" { "Voir et compléter mon profil médical" } }
        }
        section aria-labelledby="h-measurements" {
            h2 id="h-measurements" { "Mes mesures" }
            @if measurements.is_empty() {
                p { "Aucune mesure. Les applications connectées autorisées à ajouter des mesures les déposent ici." }
            }
            @for (kind, list) in by_kind.values() {
                h3 { (kind_fr(*kind)) }
                (chart(*kind, list))
                table {
                    caption class="visually-hidden" { (kind_fr(*kind)) " : dernières mesures" }
                    thead { tr { th scope="col" { "Date" } th scope="col" { "Valeur" } th scope="col" { "Source" } } }
                    tbody {
                        @for m in list.iter().rev().take(TABLE_ROWS) {
                            tr {
                                td { time datetime=(iso_utc(m.at)) { (datetime_fr(m.at)) } }
                                td { (value_fr(m)) }
                                td { (m.device.as_deref().unwrap_or(&m.app_id)) }
                            }
                        }
                    }
                }
            }
        }
    };
    page("Mon profil", Some(&who), Area::Profile, content)
}
