//! Reading the `POSTDOC_METRICS` JSONL file while the recipe appends to it.

use crate::MetricLine;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// Parses one metrics line; `None` for lines that are not a JSON object. Non-numeric and
/// non-finite values are skipped; `step` (an integer) is the x axis, not a metric.
pub fn parse_metrics_line(line: &str) -> Option<MetricLine> {
    let value: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    let object = value.as_object()?;
    let step = object.get("step").and_then(|s| s.as_i64().or_else(|| s.as_f64().map(|f| f as i64)));
    let values = object
        .iter()
        .filter(|(k, _)| k.as_str() != "step")
        .filter_map(|(k, v)| v.as_f64().filter(|f| f.is_finite()).map(|f| (k.clone(), f)))
        .collect();
    Some(MetricLine { step, values })
}

/// Follows a file as it grows, yielding complete lines only.
pub struct MetricsTail {
    path: PathBuf,
    offset: u64,
    partial: String,
    /// Lines that were not metric objects (reported, never fatal).
    pub malformed: usize,
}

/// Upper bound on what one poll reads, so a runaway writer cannot flood the harness.
const MAX_READ: u64 = 4 << 20;

impl MetricsTail {
    pub fn new(path: PathBuf) -> MetricsTail {
        MetricsTail { path, offset: 0, partial: String::new(), malformed: 0 }
    }

    /// New complete lines since the last poll; `finished` also takes a last unterminated line.
    pub fn poll(&mut self, finished: bool) -> Vec<MetricLine> {
        let mut buf = Vec::new();
        if let Ok(mut f) = File::open(&self.path)
            && f.seek(SeekFrom::Start(self.offset)).is_ok()
        {
            let _ = f.take(MAX_READ).read_to_end(&mut buf);
        }
        self.offset += buf.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        let mut out = Vec::new();
        while let Some(nl) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=nl).collect();
            self.take(&line, &mut out);
        }
        if finished && !self.partial.trim().is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.take(&line, &mut out);
        }
        out
    }

    fn take(&mut self, line: &str, out: &mut Vec<MetricLine>) {
        if line.trim().is_empty() {
            return;
        }
        match parse_metrics_line(line) {
            Some(m) if !m.values.is_empty() => out.push(m),
            Some(_) => {}
            None => self.malformed += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parses_numbers_and_skips_the_rest() {
        let m = parse_metrics_line(r#"{"step": 3, "loss": 0.5, "note": "x", "bad": NaN}"#);
        assert!(m.is_none(), "NaN is not JSON");
        let m = parse_metrics_line(r#"{"step": 3, "loss": 0.5, "note": "x"}"#).unwrap();
        assert_eq!(m, MetricLine { step: Some(3), values: vec![("loss".into(), 0.5)] });
        assert!(parse_metrics_line("[1,2]").is_none());
    }

    #[test]
    fn tail_yields_complete_lines_as_the_file_grows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        let mut tail = MetricsTail::new(path.clone());
        assert!(tail.poll(false).is_empty(), "a missing file is not an error");
        let mut f = File::create(&path).unwrap();
        write!(f, "{{\"step\": 1, \"loss\": 2.0}}\n{{\"step\": 2, \"lo").unwrap();
        assert_eq!(tail.poll(false).len(), 1);
        write!(f, "ss\": 1.5}}\nnot json\n{{\"step\": 3, \"loss\": 1.0}}").unwrap();
        let lines = tail.poll(false);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].values, vec![("loss".to_string(), 1.5)]);
        assert_eq!(tail.malformed, 1);
        assert_eq!(tail.poll(true).len(), 1, "the unterminated last line counts once the process ended");
    }
}
