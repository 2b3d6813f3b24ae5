//! A paper's text split into its parts (abstract, introduction, method, experiments, results,
//! conclusion, related work, references) by its headings: numbered ones (`3 Method`,
//! `4.1 Setup`, `III. EXPERIMENTS`), Markdown ones (`## Method`), and the usual unnumbered
//! ones on a line of their own (`Abstract`, `References`).

use crate::model::Section;

/// What a heading names, by its words.
pub fn kind_of(heading: &str) -> &'static str {
    let h = heading.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| h.contains(w));
    if has(&["abstract", "summary"]) && h.split_whitespace().count() <= 2 {
        "abstract"
    } else if has(&["reference", "bibliography"]) {
        "references"
    } else if has(&["related work", "background", "prior work", "literature"]) {
        "related"
    } else if has(&["introduction", "motivation", "overview"]) {
        "introduction"
    } else if has(&["conclusion", "discussion", "future work", "limitation"]) {
        "conclusion"
    } else if has(&["result", "ablation", "analysis", "findings"]) {
        "results"
    } else if has(&["experiment", "evaluation", "setup", "benchmark", "empirical"]) {
        "experiments"
    } else if has(&[
        "method",
        "approach",
        "model",
        "algorithm",
        "framework",
        "training",
        "architecture",
        "proposed",
        "objective",
        "our ",
    ]) {
        "method"
    } else {
        "other"
    }
}

/// The heading a line is, if it is one: its text without numbering or marks.
fn heading(line: &str) -> Option<String> {
    let t = line.trim();
    if t.is_empty() || t.len() > 80 {
        return None;
    }
    if let Some(rest) = t.strip_prefix('#') {
        let text = rest.trim_start_matches('#').trim();
        return (!text.is_empty()).then(|| text.to_string());
    }
    // `3 Method`, `3. Method`, `4.1 Setup`, `III. EXPERIMENTS`, `A Appendix` is too ambiguous.
    let (number, rest) = t.split_once(char::is_whitespace)?;
    let numbered = {
        let n = number.trim_end_matches('.');
        !n.is_empty()
            && (n.split('.').all(|p| !p.is_empty() && p.len() <= 2 && p.chars().all(|c| c.is_ascii_digit()))
                || (n.len() <= 4 && n.chars().all(|c| "IVX".contains(c)) && number.ends_with('.')))
    };
    let rest = rest.trim();
    let words = rest.split_whitespace().count();
    let looks_like_title = (1..=8).contains(&words)
        && rest.chars().next().is_some_and(char::is_uppercase)
        && !rest.ends_with(['.', ',', ';', ':'])
        && rest.chars().filter(|c| c.is_ascii_digit()).count() <= 2;
    (numbered && looks_like_title).then(|| rest.to_string())
}

/// An unnumbered heading on a line of its own: a known section name.
fn bare_heading(line: &str) -> Option<String> {
    let t = line.trim().trim_end_matches(':');
    let known = [
        "abstract",
        "introduction",
        "related work",
        "background",
        "method",
        "methods",
        "methodology",
        "approach",
        "experiments",
        "experimental setup",
        "evaluation",
        "results",
        "discussion",
        "conclusion",
        "conclusions",
        "references",
        "bibliography",
        "acknowledgements",
        "acknowledgments",
    ];
    known.contains(&t.to_lowercase().as_str()).then(|| t.to_string())
}

/// Splits `text` into sections. Text before the first heading is the abstract when the text
/// has no heading that says so (a title page followed by the abstract), else `other`.
pub fn split(text: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut current = Section { kind: "other".into(), title: String::new(), text: String::new() };
    for line in text.lines() {
        if let Some(h) = bare_heading(line).or_else(|| heading(line)) {
            if !current.text.trim().is_empty() || !current.title.is_empty() {
                sections.push(current);
            }
            current = Section { kind: kind_of(&h).into(), title: h, text: String::new() };
            continue;
        }
        current.text.push_str(line.trim_end());
        current.text.push('\n');
    }
    if !current.text.trim().is_empty() || !current.title.is_empty() {
        sections.push(current);
    }
    for s in &mut sections {
        s.text = tidy(&s.text);
    }
    // With no abstract heading, the first part stands for it: the text before the first
    // heading, or the text under the document's title (Markdown's `# Title`).
    let has_abstract = sections.iter().any(|s| s.kind == "abstract");
    if !has_abstract && let Some(first) = sections.first_mut().filter(|s| s.kind == "other") {
        first.kind = "abstract".into();
    }
    sections.retain(|s| !s.text.is_empty() || !s.title.is_empty());
    sections
}

/// Paragraphs joined back from hard-wrapped lines, words broken by a hyphen at a line end mended.
pub fn tidy(text: &str) -> String {
    let mut out = String::new();
    for paragraph in text.split("\n\n") {
        let mut p = String::new();
        for line in paragraph.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if p.ends_with('-') && line.starts_with(char::is_lowercase) {
                p.pop();
            } else if !p.is_empty() {
                p.push(' ');
            }
            p.push_str(line);
        }
        if !p.is_empty() {
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(&p);
        }
    }
    out
}

/// The sentences of a text, split at `.`, `!` or `?` followed by a space and a capital letter
/// or a digit (so `e.g. this` and `Fig. 3` do not split, mostly).
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        current.push(*c);
        if matches!(c, '.' | '!' | '?') {
            let next_space = chars.get(i + 1).is_none_or(|n| n.is_whitespace());
            let after = chars[i + 1..].iter().find(|n| !n.is_whitespace());
            let starts_sentence = after.is_none_or(|n| n.is_uppercase() || n.is_ascii_digit() || *n == '(');
            let word: String = current.split_whitespace().last().unwrap_or("").to_lowercase();
            let abbreviation = ["e.g.", "i.e.", "et al.", "fig.", "eq.", "vs.", "cf.", "al.", "sec.", "tab."]
                .iter()
                .any(|a| word.ends_with(a));
            if next_space && starts_sentence && !abbreviation {
                let s = current.split_whitespace().collect::<Vec<_>>().join(" ");
                if !s.is_empty() {
                    out.push(s);
                }
                current.clear();
            }
        }
    }
    let s = current.split_whitespace().collect::<Vec<_>>().join(" ");
    if !s.is_empty() {
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paper_splits_at_its_headings() {
        let text = "LoRA: Low-Rank Adaptation\nEdward Hu, Yelong Shen\n\nAbstract\nWe propose LoRA, which freezes the weights.\nIt cuts train-\nable parameters by 10,000 times.\n\n1 Introduction\nFine-tuning is costly.\n\n2 Related Work\nAdapters add layers.\n\n3 Our Method\nWe learn a low-rank update BA.\n\n3.1 Initialisation\nB starts at zero.\n\n4. Experiments\nWe train GPT-3 175B.\n\n5 Results\nLoRA matches fine-tuning, 89.7 against 89.5 on MNLI.\n\n6 Conclusion\nIt works.\n\nReferences\n[1] Houlsby et al. Parameter-efficient transfer learning. 2019.\n";
        let sections = split(text);
        let kinds: Vec<(&str, &str)> = sections.iter().map(|s| (s.kind.as_str(), s.title.as_str())).collect();
        assert_eq!(
            kinds,
            [
                ("other", ""),
                ("abstract", "Abstract"),
                ("introduction", "Introduction"),
                ("related", "Related Work"),
                ("method", "Our Method"),
                ("other", "Initialisation"),
                ("experiments", "Experiments"),
                ("results", "Results"),
                ("conclusion", "Conclusion"),
                ("references", "References"),
            ]
        );
        assert_eq!(
            sections[1].text,
            "We propose LoRA, which freezes the weights. It cuts trainable parameters by 10,000 times."
        );
        // Markdown headings, and no abstract heading: the text before the first heading is it.
        let md = split("We study X.\n\n## Method\nWe do Y.\n\n## Results\nIt improves Z by 3%.");
        assert_eq!(md.iter().map(|s| s.kind.as_str()).collect::<Vec<_>>(), ["abstract", "method", "results"]);
        // Sentences with numbers are not headings.
        assert!(heading("3 epochs were enough to converge.").is_none());
        assert!(heading("2021 was a good year for this.").is_none());
        assert_eq!(heading("III. EXPERIMENTS").as_deref(), Some("EXPERIMENTS"));
    }

    #[test]
    fn sentences_split_at_their_ends_not_at_abbreviations() {
        assert_eq!(
            sentences(
                "LoRA reduces memory by 3x, e.g. on GPT-3. It matches fine-tuning (Fig. 2). See Hu et al. 2021 for more! Done"
            ),
            [
                "LoRA reduces memory by 3x, e.g. on GPT-3.",
                "It matches fine-tuning (Fig. 2).",
                "See Hu et al. 2021 for more!",
                "Done"
            ]
        );
    }
}
