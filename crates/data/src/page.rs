//! An inspection as one self-contained HTML page with plots: the figures as tables, the length
//! distributions and the columns' fill as inline SVG, the sample rows as text. The page has no
//! script and loads nothing; every string from the data is escaped, so a dataset holding markup
//! shows it as text.

use crate::inspect::{Bin, Inspection, Lengths};
use std::fmt::Write;

/// Text made safe to place in HTML content or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#202124}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}table{border-collapse:collapse;margin:.5em 0}\
td,th{border-bottom:1px solid #e0e0e0;padding:.25em .8em;text-align:left;vertical-align:top}\
th{font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}\
pre{background:#f6f8fa;padding:.6em;overflow:auto;white-space:pre-wrap;word-break:break-word}\
.muted{color:#5f6368}.plots{display:flex;flex-wrap:wrap;gap:1.5em}svg text{font:11px system-ui,sans-serif;fill:#3c4043}";

/// The page for `name` (a path or `hub:OWNER/NAME`).
pub fn inspection_page(name: &str, inspection: &Inspection) -> String {
    let i = inspection;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>{} — postdoc data inspect</title><style>{STYLE}</style></head><body><h1>{}</h1>",
        escape(name),
        escape(name)
    );
    let _ = write!(out, "<table>");
    let mut fact = |k: &str, v: String| {
        let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(&v));
    };
    fact("rows", i.rows.to_string());
    if i.skipped > 0 {
        fact("malformed rows skipped", i.skipped.to_string());
    }
    if let Some(v) = &i.version {
        fact("version", v.clone());
    }
    fact("exact duplicates", i.exact_duplicates.count.to_string());
    if let Some(near) = &i.near_duplicates {
        fact(&format!("near duplicates (similarity > {})", near.threshold), near.found.count.to_string());
    }
    if !i.shapes.is_empty() {
        let shapes: Vec<String> = i.shapes.iter().map(|(s, n)| format!("{s} {n}")).collect();
        fact("post-training shape", shapes.join(", "));
    }
    let total: u64 = i.scripts.values().sum();
    let scripts: Vec<String> =
        i.scripts.iter().map(|(s, n)| format!("{s} {:.1}%", 100.0 * *n as f64 / total.max(1) as f64)).collect();
    fact("characters", scripts.join(", "));
    let langs: Vec<String> = i.languages.iter().map(|l| format!("{} {:.0}%", l.language, 100.0 * l.share)).collect();
    fact("language hints", if langs.is_empty() { "none".into() } else { langs.join(", ") });
    out.push_str("</table>");

    out.push_str("<h2>Lengths</h2><div class=\"plots\">");
    for (title, lengths) in [("characters per row", &i.text_chars), ("tokens per row (approx.)", &i.text_tokens)] {
        if let Some(l) = lengths {
            out.push_str(&histogram(title, l));
        }
    }
    out.push_str("</div>");

    out.push_str("<h2>Columns</h2><div class=\"plots\">");
    out.push_str(&fill_chart(i));
    out.push_str("</div><table><tr><th>column</th><th>present</th><th>null</th><th>empty</th><th>types</th><th>characters</th></tr>");
    for c in &i.columns {
        let types: Vec<String> = c.types.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let chars = match (&c.chars, &c.numbers) {
            (Some(l), _) => format!("{}..{} (median {}, p99 {})", l.min, l.max, l.p50, l.p99),
            (None, Some(n)) => format!("numbers {}..{} (mean {:.4})", n.min, n.max, n.mean),
            _ => "-".into(),
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.name),
            c.present,
            c.nulls,
            c.empty,
            escape(&types.join(", ")),
            escape(&chars)
        );
    }
    out.push_str("</table>");

    let examples = |e: &[(u64, u64)]| e.iter().map(|(r, f)| format!("line {r} repeats line {f}")).collect::<Vec<_>>();
    let mut dups = examples(&i.exact_duplicates.examples);
    if let Some(near) = &i.near_duplicates {
        dups.extend(examples(&near.found.examples).into_iter().map(|e| format!("{e} (nearly)")));
    }
    if !dups.is_empty() {
        out.push_str("<h2>Duplicates</h2><ul>");
        for d in dups {
            let _ = write!(out, "<li>{}</li>", escape(&d));
        }
        out.push_str("</ul>");
    }
    if !i.skipped_examples.is_empty() {
        out.push_str("<h2>Malformed rows</h2>");
        for s in &i.skipped_examples {
            let _ = write!(out, "<pre>{}</pre>", escape(s));
        }
    }
    if !i.samples.is_empty() {
        out.push_str("<h2>Sample rows</h2>");
        for s in &i.samples {
            let text = serde_json::to_string_pretty(s).unwrap_or_default();
            let shown: String = text.chars().take(4000).collect();
            let _ = write!(out, "<pre>{}</pre>", escape(&shown));
        }
    }
    out.push_str("<p class=\"muted\">Written by postdoc data inspect.</p></body></html>\n");
    out
}

const W: f64 = 420.0;
const H: f64 = 180.0;
const PAD: f64 = 28.0;

/// Bars of a length histogram, with the median and p90 marked.
fn histogram(title: &str, l: &Lengths) -> String {
    let bins: &[Bin] = &l.histogram;
    let peak = bins.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
    let bar_w = (W - 2.0 * PAD) / bins.len().max(1) as f64;
    let mut svg = format!(
        "<figure><svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">",
        escape(title)
    );
    for (k, b) in bins.iter().enumerate() {
        let h = (H - 2.0 * PAD) * b.count as f64 / peak;
        let x = PAD + k as f64 * bar_w;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#1a73e8\"><title>{}..{}: {} rows</title></rect>",
            H - PAD - h,
            (bar_w - 1.0).max(0.5),
            b.from,
            b.to,
            b.count
        );
    }
    let _ = write!(
        svg,
        "<line x1=\"{PAD}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#5f6368\"/>\
         <text x=\"{PAD}\" y=\"{ty}\">{}</text><text x=\"{x2}\" y=\"{ty}\" text-anchor=\"end\">{}</text>\
         <text x=\"{PAD}\" y=\"14\">{}</text></svg>",
        l.min,
        l.max,
        escape(title),
        y = H - PAD,
        x2 = W - PAD,
        ty = H - PAD + 14.0
    );
    let _ = write!(
        svg,
        "<figcaption class=\"muted\">median {}, mean {:.1}, p90 {}, p99 {}</figcaption></figure>",
        l.p50, l.mean, l.p90, l.p99
    );
    svg
}

/// Each column's share of rows with a value, null, or empty.
fn fill_chart(i: &Inspection) -> String {
    let rows = i.rows.max(1) as f64;
    let line = 18.0;
    let label_w = 140.0;
    let h = PAD + line * i.columns.len() as f64;
    let mut svg =
        format!("<svg width=\"{W}\" height=\"{h}\" viewBox=\"0 0 {W} {h}\" role=\"img\" aria-label=\"column fill\">");
    let _ = write!(svg, "<text x=\"0\" y=\"14\">filled / empty / null / missing, per column</text>");
    let bar = W - label_w - 8.0;
    for (k, c) in i.columns.iter().enumerate() {
        let y = PAD + k as f64 * line;
        let filled = c.present.saturating_sub(c.nulls + c.empty) as f64 / rows;
        let parts = [(filled, "#1e8e3e"), (c.empty as f64 / rows, "#f9ab00"), (c.nulls as f64 / rows, "#c5221f")];
        let name: String = c.name.chars().take(22).collect();
        let _ = write!(svg, "<text x=\"0\" y=\"{:.1}\">{}</text>", y + 12.0, escape(&name));
        let mut x = label_w;
        for (share, color) in parts {
            let w = bar * share;
            if w > 0.0 {
                let _ = write!(
                    svg,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{color}\"/>",
                    line - 4.0
                );
            }
            x += w;
        }
        let _ = write!(
            svg,
            "<rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#dadce0\"/>",
            line - 4.0
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::{OnMalformed, Rows};
    use crate::{InspectSettings, inspect};

    #[test]
    fn the_page_shows_the_figures_and_never_the_markup_of_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hostile.jsonl");
        let mut text = String::new();
        for n in 0..200 {
            text.push_str(&format!(
                "{{\"prompt\": \"<script>alert({n})</script> question {n}\", \"answer\": \"{}\"}}\n",
                "x".repeat(n)
            ));
        }
        text.push_str("{\"prompt\": \"<img src=x onerror=alert(1)>\", \"answer\": null}\n");
        std::fs::write(&path, text).unwrap();
        let mut rows = Rows::open(&path, OnMalformed::Fail).unwrap();
        let inspection = inspect(&mut rows, &InspectSettings::default()).unwrap();
        let page = inspection_page("<b>name</b>", &inspection);
        assert!(!page.contains("<script"), "no script element, and the data's is escaped");
        assert!(!page.contains("<img"));
        assert!(page.contains("&lt;script&gt;alert("));
        assert!(page.contains("&lt;b&gt;name&lt;/b&gt;"));
        assert!(page.contains("<tr><th>rows</th><td>201</td></tr>"));
        // A histogram of the row lengths, whose bars hold every row.
        let chars = inspection.text_chars.as_ref().unwrap();
        assert!(chars.histogram.len() > 10 && chars.histogram.len() <= crate::inspect::BINS);
        assert_eq!(chars.histogram.iter().map(|b| b.count).sum::<u64>(), 201);
        let tokens = inspection.text_tokens.as_ref().unwrap();
        assert_eq!(page.matches("rows</title></rect>").count(), chars.histogram.len() + tokens.histogram.len());
        assert!(page.contains("default-src 'none'"));
    }

    #[test]
    fn escaping_covers_every_markup_character() {
        assert_eq!(
            escape(r#"<a href="x" title='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }
}
