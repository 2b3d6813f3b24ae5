//! The local library on real PDF files made here: a paper with text, one with only an image, an
//! encrypted one (made by qpdf), a truncated one and one that is not a PDF at all, in one
//! folder. Each broken file says why; the rest go in. Needs poppler's `pdftotext` (and `qpdf`);
//! `.ci/run` installs both, and under CI their absence fails the test.

use postdoc_papers::library;
use std::path::Path;
use std::process::Command;

fn tools_present() -> bool {
    let have = |t: &str| Command::new(t).arg("-v").output().is_ok();
    if have("pdftotext") && have("qpdf") {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "pdftotext and qpdf are required under CI (poppler-utils, qpdf)");
    eprintln!("skipping: pdftotext or qpdf missing (apt-get install poppler-utils qpdf)");
    false
}

/// A PDF of one page per entry of `pages`, each page's lines drawn as text (or, with `image`,
/// a page holding only a small image and no text), with a correct cross-reference table.
fn pdf(pages: &[&[&str]], image: bool) -> Vec<u8> {
    let mut objects: Vec<String> = Vec::new();
    let n_pages = pages.len();
    // 1: catalog, 2: pages, 3: font, then per page: page object and its content stream (and an image).
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    let kids: Vec<String> = (0..n_pages).map(|i| format!("{} 0 R", 4 + i * 3)).collect();
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {n_pages} >>", kids.join(" ")));
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".into());
    for (i, lines) in pages.iter().enumerate() {
        let page = 4 + i * 3;
        let (content, img) = (page + 1, page + 2);
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> /XObject << /Im1 {img} 0 R >> >> /Contents {content} 0 R >>"
        ));
        let stream = if image {
            "q 100 0 0 100 72 600 cm /Im1 Do Q".to_string()
        } else {
            let mut s = String::from("BT /F1 11 Tf 14 TL 72 740 Td");
            for line in lines.iter() {
                let escaped = line.replace('\\', "\\\\").replace('(', "\\(").replace(')', "\\)");
                s.push_str(&format!(" ({escaped}) Tj T*"));
            }
            s.push_str(" ET");
            s
        };
        objects.push(format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()));
        objects.push("<< /Type /XObject /Subtype /Image /Width 2 /Height 2 /ColorSpace /DeviceGray /BitsPerComponent 8 /Length 4 >>\nstream\n\u{0}\u{ff}\u{ff}\u{0}\nendstream".into());
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n", i + 1).bytes());
        // The image bytes are raw; everything else is ASCII.
        out.extend(body.chars().map(|c| c as u32 as u8));
        out.extend(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
    for o in offsets {
        out.extend(format!("{o:010} 00000 n \n").bytes());
    }
    out.extend(format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).bytes());
    out
}

const PAPER: &[&[&str]] = &[
    &[
        "Curriculum Learning for Tiny Reversal Models",
        "arXiv:2501.01234v1 [cs.LG]",
        "Abstract",
        "We propose length curricula, which order practice words from short to long.",
        "They improve exact match by 12 points on a reversal benchmark.",
        "1 Introduction",
        "Small models struggle with long words.",
    ],
    &[
        "2 Method",
        "We sample words of growing length during the first half of training.",
        "3 Results",
        "Accuracy rises from 0.41 to 0.53 with the curriculum.",
        "References",
        "[1] Bengio et al. Curriculum learning. 2009.",
    ],
];

#[tokio::test]
async fn a_folder_of_pdfs_goes_in_except_the_broken_ones_which_say_why() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("papers");
    std::fs::create_dir_all(folder.join("more")).unwrap();
    std::fs::write(folder.join("a-curriculum.pdf"), pdf(PAPER, false)).unwrap();
    std::fs::write(folder.join("b-scanned.pdf"), pdf(&[&["ignored"]], true)).unwrap();
    let whole = pdf(PAPER, false);
    std::fs::write(folder.join("c-truncated.pdf"), &whole[..whole.len() / 3]).unwrap();
    std::fs::write(folder.join("d-not-a-pdf.pdf"), b"<html>a web page saved as .pdf</html>").unwrap();
    let encrypted = folder.join("more/e-encrypted.pdf");
    let status = Command::new("qpdf")
        .args(["--encrypt", "user-secret", "owner-secret", "256", "--"])
        .arg(folder.join("a-curriculum.pdf"))
        .arg(&encrypted)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(
        folder.join("more/notes.md"),
        "# Notes on GRPO\n\nWe introduce group baselines.\n\n## Results\nIt improves reward by 5%.\n",
    )
    .unwrap();
    std::fs::write(folder.join("more/figure.png"), [0u8; 8]).unwrap();

    let added = library::add(&folder).await;
    let ids: Vec<&str> = added.papers.iter().map(|p| p.paper.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{ids:?} {:?}", added.failed);
    let pdf_paper = added.papers.iter().find(|p| p.path.ends_with("a-curriculum.pdf")).unwrap();
    assert_eq!(pdf_paper.paper.id, "arxiv:2501.01234", "the id stamped in the margin");
    assert_eq!(pdf_paper.paper.title, "Curriculum Learning for Tiny Reversal Models");
    let kinds: Vec<&str> = pdf_paper.sections.iter().map(|s| s.kind.as_str()).collect();
    for kind in ["abstract", "introduction", "method", "results", "references"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert!(pdf_paper.paper.abstract_text.as_deref().unwrap().contains("order practice words from short to long"));

    let reason = |name: &str| {
        added
            .failed
            .iter()
            .find(|f| f.path.ends_with(name))
            .map(|f| f.reason.clone())
            .unwrap_or_else(|| panic!("{name} should fail: {:?}", added.failed))
    };
    assert!(reason("b-scanned.pdf").contains("no text layer"), "{}", reason("b-scanned.pdf"));
    assert!(reason("c-truncated.pdf").contains("damaged or truncated"), "{}", reason("c-truncated.pdf"));
    assert!(reason("d-not-a-pdf.pdf").contains("not a PDF"));
    assert!(reason("e-encrypted.pdf").contains("encrypted"), "{}", reason("e-encrypted.pdf"));
    assert_eq!(added.ignored.len(), 1, "the image is left out, not failed");
    assert!(Path::new(&added.ignored[0]).ends_with("figure.png"));
}
