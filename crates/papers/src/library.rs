//! The local library: PDFs, plain text, Markdown and BibTeX files (or folders of them) read into
//! papers with their sections. PDF text comes from poppler's `pdftotext`, run as a child process
//! with a time limit (a robust extractor that survives files that crash pure-Rust parsers). A
//! file that cannot be read (encrypted, truncated, image-only, too large, not a PDF) gives a
//! clear error of its own and the rest of the folder still goes in.

use crate::model::{Paper, Section};
use crate::sections::{split, tidy};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Files larger than this are refused rather than read.
pub const MAX_FILE_BYTES: u64 = 200 << 20;
/// How long `pdftotext` may take on one file.
pub const PDF_TIMEOUT: Duration = Duration::from_secs(60);

/// A file that went in: the paper and its sections.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingested {
    pub path: PathBuf,
    pub paper: Paper,
    pub sections: Vec<Section>,
}

/// Why one file did not go in.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct FileError {
    pub path: PathBuf,
    pub reason: String,
}

/// What a folder (or file) gave: the papers read and the files that could not be.
#[derive(Debug, Default)]
pub struct Added {
    pub papers: Vec<Ingested>,
    pub failed: Vec<FileError>,
    /// Files skipped because they are not of a kind the library reads.
    pub ignored: Vec<PathBuf>,
}

/// Reads `path`: a file, or every readable file under a folder (in name order).
pub async fn add(path: &Path) -> Added {
    let mut added = Added::default();
    let files = match files_under(path) {
        Ok(f) => f,
        Err(reason) => {
            added.failed.push(FileError { path: path.to_path_buf(), reason });
            return added;
        }
    };
    for file in files {
        let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let read = match ext.as_str() {
            "pdf" => read_pdf(&file).await.map(|p| vec![p]),
            "txt" | "md" | "markdown" => read_text(&file).map(|p| vec![p]),
            "bib" | "bibtex" => read_bibtex(&file),
            _ => {
                added.ignored.push(file);
                continue;
            }
        };
        match read {
            Ok(papers) => added.papers.extend(papers),
            Err(reason) => added.failed.push(FileError { path: file, reason }),
        }
    }
    added
}

fn files_under(path: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            let hidden = e.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if e.is_dir() {
                stack.push(e);
            } else {
                out.push(e);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn size_ok(path: &Path) -> Result<(), String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size > MAX_FILE_BYTES {
        return Err(format!("{size} bytes, over the {MAX_FILE_BYTES}-byte limit"));
    }
    if size == 0 {
        return Err("the file is empty".into());
    }
    Ok(())
}

/// A paper keyed by the hash of its file, unless its text names an arXiv id or a DOI.
fn local_paper(path: &Path, title: String, bytes: &[u8], text: &str) -> Paper {
    let digest: String = Sha256::digest(bytes).iter().take(8).map(|b| format!("{b:02x}")).collect();
    let mut p = Paper {
        id: format!("local:{digest}"),
        title,
        url: Some(path.display().to_string()),
        source: "local".into(),
        ..Paper::default()
    };
    // arXiv stamps its id in the margin of every PDF's first page: `arXiv:2106.09685v2 [cs.CL]`.
    if let Some(found) = text.split_whitespace().take(4000).find_map(|w| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '.' && c != ':' && c != '/');
        let id = w.strip_prefix("arXiv:")?;
        crate::model::is_arxiv_id(id).then(|| crate::model::strip_version(id).to_string())
    }) {
        p.arxiv = Some(found);
        p.id = p.key();
    }
    p
}

/// The title: the first line of substance (a Markdown heading, or the first short line).
fn title_of(text: &str, path: &Path) -> String {
    text.lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .find(|l| l.len() >= 3 && l.len() <= 200 && !l.starts_with("arXiv:"))
        .map(str::to_string)
        .unwrap_or_else(|| path.file_stem().and_then(|s| s.to_str()).unwrap_or("untitled").to_string())
}

fn finish(path: &Path, bytes: &[u8], text: &str) -> Result<Ingested, String> {
    let mut sections = split(text);
    // The title page is not a section.
    let title = title_of(text, path);
    let mut paper = local_paper(path, title, bytes, text);
    if let Some(i) = sections.iter().position(|s| s.kind == "abstract") {
        paper.abstract_text = Some(sections[i].text.clone()).filter(|a| !a.is_empty());
    }
    sections.retain(|s| !s.text.trim().is_empty());
    if sections.is_empty() {
        return Err("no text to read".into());
    }
    Ok(Ingested { path: path.to_path_buf(), paper, sections })
}

pub fn read_text(path: &Path) -> Result<Ingested, String> {
    size_ok(path)?;
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let text = String::from_utf8(bytes.clone())
        .map_err(|e| format!("not UTF-8 text (invalid byte at {})", e.utf8_error().valid_up_to()))?;
    finish(path, &bytes, &text)
}

/// Runs `pdftotext` on a PDF, with a time limit, and reads its text.
pub async fn read_pdf(path: &Path) -> Result<Ingested, String> {
    size_ok(path)?;
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if !bytes.starts_with(b"%PDF-") {
        return Err("not a PDF (it does not start with %PDF-)".into());
    }
    let child = tokio::process::Command::new("pdftotext")
        .args(["-q", "-enc", "UTF-8", "-nopgbrk"])
        .arg(path)
        .arg("-")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!("cannot run pdftotext ({e}); install poppler-utils (Debian: apt-get install poppler-utils)")
        })?;
    let output = match tokio::time::timeout(PDF_TIMEOUT, child.wait_with_output()).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return Err(format!("pdftotext failed: {e}")),
        Err(_) => return Err(format!("pdftotext took more than {} s", PDF_TIMEOUT.as_secs())),
    };
    if !output.status.success() {
        // With -q poppler says nothing; ask it once more, loudly, for the reason.
        let reason = pdf_problem(path).await;
        return Err(match output.status.code() {
            Some(1) if reason.to_lowercase().contains("password") => {
                "encrypted: it needs a password to open".to_string()
            }
            Some(1) => format!(
                "damaged or truncated PDF{}",
                if reason.is_empty() { String::new() } else { format!(" ({reason})") }
            ),
            Some(3) => "its permissions forbid copying text".to_string(),
            code => format!(
                "pdftotext failed (exit {code:?}){}",
                if reason.is_empty() { String::new() } else { format!(": {reason}") }
            ),
        });
    }
    let text = String::from_utf8_lossy(&output.stdout).replace('\u{c}', "\n");
    if text.split_whitespace().map(str::len).sum::<usize>() < 20 {
        return Err("no text layer (an image-only or scanned PDF); run OCR on it first".into());
    }
    finish(path, &bytes, &text)
}

async fn pdf_problem(path: &Path) -> String {
    let out = tokio::process::Command::new("pdfinfo").arg(path).stdin(Stdio::null()).output().await;
    match out {
        Ok(o) => {
            String::from_utf8_lossy(&o.stderr).lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("").to_string()
        }
        Err(_) => String::new(),
    }
}

/// Entries of a BibTeX file as papers (no sections: a bibliography holds no text). An entry
/// that cannot be parsed is skipped; a file with none is an error.
pub fn read_bibtex(path: &Path) -> Result<Vec<Ingested>, String> {
    size_ok(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let entries = parse_bibtex(&text);
    if entries.is_empty() {
        return Err("no BibTeX entry found".into());
    }
    Ok(entries
        .into_iter()
        .filter(|e| !matches!(e.kind.as_str(), "comment" | "string" | "preamble"))
        .map(|e| {
            let field = |k: &str| e.fields.iter().find(|(n, _)| n == k).map(|(_, v)| clean_tex(v));
            let mut p = Paper {
                title: field("title").unwrap_or_else(|| e.key.clone()),
                abstract_text: field("abstract"),
                authors: field("author")
                    .map(|a| a.split(" and ").map(|n| flip_name(n.trim())).collect())
                    .unwrap_or_default(),
                year: field("year").and_then(|y| y.trim().parse().ok()),
                venue: field("journal").or_else(|| field("booktitle")),
                doi: field("doi"),
                url: field("url"),
                source: "local".into(),
                ..Paper::default()
            };
            let eprint =
                field("eprint").filter(|_| field("archiveprefix").is_none_or(|a| a.eq_ignore_ascii_case("arxiv")));
            p.arxiv = eprint
                .filter(|id| crate::model::is_arxiv_id(id))
                .map(|id| crate::model::strip_version(&id).to_string());
            p.id = if p.arxiv.is_some() || p.doi.is_some() { p.key() } else { format!("bib:{}", e.key) };
            let sections = p
                .abstract_text
                .iter()
                .map(|a| Section { kind: "abstract".into(), title: "Abstract".into(), text: tidy(a) })
                .collect();
            Ingested { path: path.to_path_buf(), paper: p, sections }
        })
        .collect())
}

/// `Hu, Edward J.` as `Edward J. Hu`.
fn flip_name(name: &str) -> String {
    match name.split_once(',') {
        Some((last, first)) => format!("{} {}", first.trim(), last.trim()),
        None => name.to_string(),
    }
}

/// Braces and common TeX escapes removed, whitespace squashed.
fn clean_tex(value: &str) -> String {
    let v =
        value.replace(['{', '}'], "").replace("\\&", "&").replace("\\%", "%").replace("\\_", "_").replace("--", "–");
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug, Clone, PartialEq)]
pub struct BibEntry {
    pub kind: String,
    pub key: String,
    pub fields: Vec<(String, String)>,
}

/// A tolerant BibTeX reader: `@kind{key, name = {value} or "value" or number, ...}`, nested
/// braces inside values, `#` concatenation left as written.
pub fn parse_bibtex(text: &str) -> Vec<BibEntry> {
    let chars: Vec<char> = text.chars().collect();
    let mut entries = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '@' {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut j = start;
        while j < chars.len() && chars[j].is_alphanumeric() {
            j += 1;
        }
        let kind: String = chars[start..j].iter().collect::<String>().to_lowercase();
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        if j >= chars.len() || (chars[j] != '{' && chars[j] != '(') || kind.is_empty() {
            i = j.max(i + 1);
            continue;
        }
        let close = if chars[j] == '{' { '}' } else { ')' };
        // The entry's body up to its matching close.
        let mut depth = 0;
        let mut k = j;
        while k < chars.len() {
            match chars[k] {
                '{' | '(' if chars[k] == chars[j] || chars[k] == '{' => depth += 1,
                c if c == close || c == '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            k += 1;
        }
        let body: String = chars[j + 1..k.min(chars.len())].iter().collect();
        i = k + 1;
        let (key, rest) = body.split_once(',').unwrap_or((body.as_str(), ""));
        entries.push(BibEntry { kind, key: key.trim().to_string(), fields: parse_fields(rest) });
    }
    entries
}

fn parse_fields(body: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = body.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
            i += 1;
        }
        let name_start = i;
        while i < chars.len() && chars[i] != '=' {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let name = chars[name_start..i].iter().collect::<String>().trim().to_lowercase();
        i += 1;
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < chars.len() && chars[i] == '{' {
            let mut depth = 0;
            while i < chars.len() {
                match chars[i] {
                    '{' => {
                        depth += 1;
                        if depth > 1 {
                            value.push('{');
                        }
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                        value.push('}');
                    }
                    c => value.push(c),
                }
                i += 1;
            }
        } else if i < chars.len() && chars[i] == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                value.push(chars[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < chars.len() && chars[i] != ',' {
                value.push(chars[i]);
                i += 1;
            }
        }
        if !name.is_empty() {
            fields.push((name, value.trim().to_string()));
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bibtex_entries_become_papers() {
        let bib = r#"
@comment{ignored}
@article{hu2021lora,
  title = {{LoRA}: Low-Rank Adaptation of Large Language Models},
  author = {Hu, Edward J. and Shen, Yelong and Wallis, Phillip},
  journal = "arXiv preprint",
  year = 2021,
  eprint = {2106.09685},
  archivePrefix = {arXiv},
  abstract = {We propose {LoRA}, which freezes the pre-trained weights.}
}
@inproceedings{ouyang2022,
  title={Training language models to follow instructions with human feedback},
  author={Ouyang, Long and Wu, Jeff},
  booktitle={NeurIPS},
  year={2022},
  doi={10.5555/3600270.3602281}
}
@misc{nokey, title = {A note}}
"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("refs.bib");
        std::fs::write(&path, bib).unwrap();
        let papers = read_bibtex(&path).unwrap();
        let ids: Vec<&str> = papers.iter().map(|p| p.paper.id.as_str()).collect();
        assert_eq!(ids, ["arxiv:2106.09685", "doi:10.5555/3600270.3602281", "bib:nokey"]);
        let lora = &papers[0].paper;
        assert_eq!(lora.title, "LoRA: Low-Rank Adaptation of Large Language Models");
        assert_eq!(lora.authors, ["Edward J. Hu", "Yelong Shen", "Phillip Wallis"]);
        assert_eq!((lora.year, lora.venue.as_deref()), (Some(2021), Some("arXiv preprint")));
        assert_eq!(papers[0].sections[0].text, "We propose LoRA, which freezes the pre-trained weights.");
        assert_eq!(papers[1].paper.venue.as_deref(), Some("NeurIPS"));
        std::fs::write(&path, "no entries here").unwrap();
        assert!(read_bibtex(&path).unwrap_err().contains("no BibTeX entry"));
    }

    #[test]
    fn text_and_markdown_files_are_split_into_sections() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("notes.md");
        std::fs::write(&md, "# Curriculum learning for arithmetic\n\nWe order problems by length.\n\n## Method\nShort first.\n\n## Results\nAccuracy improves by 12%.\n").unwrap();
        let got = read_text(&md).unwrap();
        assert_eq!(got.paper.title, "Curriculum learning for arithmetic");
        assert!(got.paper.id.starts_with("local:"));
        assert_eq!(got.sections.iter().map(|s| s.kind.as_str()).collect::<Vec<_>>(), ["abstract", "method", "results"]);
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, [0xff, 0xfe, 0x00]).unwrap();
        assert!(read_text(&bad).unwrap_err().contains("not UTF-8"));
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, "").unwrap();
        assert!(read_text(&empty).unwrap_err().contains("empty"));
    }
}
