//! Full-text search over the papers (BM25 with tantivy): titles, abstracts and section text,
//! titles counting double, with a snippet of where each hit matched. The index is derived from
//! the lineage store (papers are added as they are stored, and the whole index is rebuilt
//! whenever it and the store disagree), so it can always be thrown away.

use crate::model::{Paper, Section};
use std::path::{Path, PathBuf};
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, INDEXED, STORED, STRING, Schema, TEXT, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term, doc};

#[derive(Debug, thiserror::Error)]
#[error("the paper index at {}: {reason}", dir.display())]
pub struct IndexError {
    pub dir: PathBuf,
    pub reason: String,
}

/// Where the index of a store's papers lives: beside an SQLite file, or in postdoc's cache
/// folder (one per store) for a server.
pub fn dir_for_store(store_url: &str) -> PathBuf {
    match store_url.strip_prefix("sqlite://") {
        Some(path) => Path::new(path.split('?').next().unwrap_or(path)).with_file_name("papers-index"),
        None => {
            use sha2::{Digest, Sha256};
            let digest: String =
                Sha256::digest(store_url.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect();
            postdoc_web::cache_home().join("papers-index").join(digest)
        }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    pub id: String,
    pub title: String,
    pub year: Option<u64>,
    pub score: f32,
    /// A passage where the query matched, with the matched words' byte ranges in it.
    pub snippet: String,
    pub highlights: Vec<(usize, usize)>,
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    title: Field,
    abstract_text: Field,
    body: Field,
    year: Field,
}

pub struct PaperIndex {
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        title: b.add_text_field("title", TEXT | STORED),
        abstract_text: b.add_text_field("abstract", TEXT | STORED),
        body: b.add_text_field("body", TEXT | STORED),
        year: b.add_u64_field("year", INDEXED | STORED),
    };
    (b.build(), fields)
}

/// Writer memory: enough for tens of thousands of abstracts per commit.
const WRITER_BYTES: usize = 64 << 20;

impl PaperIndex {
    /// Opens the index in `dir`, creating it (or replacing one of another shape).
    pub fn open(dir: &Path) -> Result<PaperIndex, IndexError> {
        let err = |e: &dyn std::fmt::Display| IndexError { dir: dir.to_path_buf(), reason: e.to_string() };
        let (schema, fields) = schema();
        std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
        let index = match Index::open_in_dir(dir) {
            Ok(index) if index.schema() == schema => index,
            Ok(_) | Err(_) => {
                // Missing, damaged or of an older shape: it is derived data, so start afresh.
                std::fs::remove_dir_all(dir).map_err(|e| err(&e))?;
                std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
                Index::create_in_dir(dir, schema).map_err(|e| err(&e))?
            }
        };
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(|e| err(&e))?;
        Ok(PaperIndex { dir: dir.to_path_buf(), index, reader, fields })
    }

    fn err(&self, e: impl std::fmt::Display) -> IndexError {
        IndexError { dir: self.dir.clone(), reason: e.to_string() }
    }

    /// Papers indexed.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn writer(&self) -> Result<IndexWriter, IndexError> {
        self.index.writer(WRITER_BYTES).map_err(|e| self.err(e))
    }

    fn document(&self, paper: &Paper, sections: &[Section]) -> TantivyDocument {
        let f = self.fields;
        let body: String = sections
            .iter()
            .filter(|s| s.kind != "references" && s.kind != "abstract")
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join("\n\n");
        let mut d = doc!(
            f.id => paper.id.clone(),
            f.title => paper.title.clone(),
            f.abstract_text => paper.abstract_text.clone().unwrap_or_default(),
            f.body => body,
        );
        if let Some(y) = paper.year.filter(|y| *y > 0) {
            d.add_u64(f.year, y as u64);
        }
        d
    }

    /// Adds (or replaces) papers, then makes them searchable.
    pub fn add<'a>(
        &mut self,
        papers: impl IntoIterator<Item = (&'a Paper, &'a [Section])>,
    ) -> Result<usize, IndexError> {
        let mut writer = self.writer()?;
        let mut n = 0;
        for (paper, sections) in papers {
            writer.delete_term(Term::from_field_text(self.fields.id, &paper.id));
            writer.add_document(self.document(paper, sections)).map_err(|e| self.err(e))?;
            n += 1;
        }
        writer.commit().map_err(|e| self.err(e))?;
        self.reader.reload().map_err(|e| self.err(e))?;
        Ok(n)
    }

    /// Replaces the whole index with these papers.
    pub fn rebuild<'a>(
        &mut self,
        papers: impl IntoIterator<Item = (&'a Paper, &'a [Section])>,
    ) -> Result<usize, IndexError> {
        let mut writer = self.writer()?;
        writer.delete_all_documents().map_err(|e| self.err(e))?;
        let mut n = 0;
        for (paper, sections) in papers {
            writer.add_document(self.document(paper, sections)).map_err(|e| self.err(e))?;
            n += 1;
        }
        writer.commit().map_err(|e| self.err(e))?;
        self.reader.reload().map_err(|e| self.err(e))?;
        Ok(n)
    }

    /// The best `limit` papers for `query` (words, "phrases", `title:word`, `-word`; a query
    /// that does not parse as such is read as plain words).
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<Hit>, IndexError> {
        let f = self.fields;
        let searcher = self.reader.searcher();
        let mut parser = QueryParser::for_index(&self.index, vec![f.title, f.abstract_text, f.body]);
        parser.set_field_boost(f.title, 2.0);
        let (q, _errors) = parser.parse_query_lenient(query);
        let top = searcher.search(&q, &TopDocs::with_limit(limit.max(1)).order_by_score()).map_err(|e| self.err(e))?;
        let on_abstract = SnippetGenerator::create(&searcher, &*q, f.abstract_text).map_err(|e| self.err(e))?;
        let on_body = SnippetGenerator::create(&searcher, &*q, f.body).map_err(|e| self.err(e))?;
        let mut hits = Vec::new();
        for (score, address) in top {
            let d: TantivyDocument = searcher.doc(address).map_err(|e| self.err(e))?;
            let text = |field: Field| d.get_first(field).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let mut snippet = on_abstract.snippet_from_doc(&d);
            if snippet.highlighted().is_empty() {
                let in_body = on_body.snippet_from_doc(&d);
                if !in_body.highlighted().is_empty() || snippet.fragment().is_empty() {
                    snippet = in_body;
                }
            }
            hits.push(Hit {
                id: text(f.id),
                title: text(f.title),
                year: d.get_first(f.year).and_then(|v| v.as_u64()),
                score,
                snippet: snippet.fragment().to_string(),
                highlights: snippet.highlighted().iter().map(|r| (r.start, r.end)).collect(),
            });
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paper(id: &str, title: &str, abstract_text: &str, year: i32) -> Paper {
        Paper {
            id: id.into(),
            title: title.into(),
            abstract_text: Some(abstract_text.into()),
            year: Some(year),
            source: "local".into(),
            ..Paper::default()
        }
    }

    #[test]
    fn search_ranks_by_bm25_with_snippets_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = PaperIndex::open(dir.path()).unwrap();
        let papers = [
            paper(
                "arxiv:2106.09685",
                "LoRA: Low-Rank Adaptation",
                "We freeze the weights and learn low-rank updates for fine-tuning.",
                2021,
            ),
            paper(
                "arxiv:2402.03300",
                "DeepSeekMath",
                "Group relative policy optimization improves mathematical reasoning.",
                2024,
            ),
            paper("local:1", "Notes on curricula", "Ordering training examples by length helps small models.", 2023),
        ];
        let body = [Section {
            kind: "method".into(),
            title: "Method".into(),
            text: "A curriculum of reward shaping for policy optimization.".into(),
        }];
        let items: Vec<(&Paper, &[Section])> = vec![(&papers[0], &[]), (&papers[1], &[]), (&papers[2], &body)];
        assert_eq!(index.rebuild(items).unwrap(), 3);
        let hits = index.search("policy optimization", 5).unwrap();
        assert_eq!(hits[0].id, "arxiv:2402.03300");
        assert_eq!(hits[1].id, "local:1", "matched in its body");
        assert!(hits[0].score > hits[1].score);
        let (a, b) = hits[0].highlights[0];
        assert_eq!(&hits[0].snippet[a..b].to_lowercase(), "policy");
        assert_eq!(hits[0].year, Some(2024));
        assert!(index.search("title:lora", 5).unwrap().iter().any(|h| h.id == "arxiv:2106.09685"));
        assert!(index.search("\"unbalanced quote", 5).is_ok(), "a query that does not parse is read as words");

        // Re-adding a paper replaces it; a reopened index finds the same.
        let updated = paper("local:1", "Notes on curricula", "Nothing about that any more.", 2023);
        index.add([(&updated, &[][..])]).unwrap();
        assert_eq!(index.len(), 3);
        drop(index);
        let index = PaperIndex::open(dir.path()).unwrap();
        assert_eq!(index.len(), 3);
        assert!(index.search("curriculum reward shaping", 5).unwrap().iter().all(|h| h.id != "local:1"));
    }
}
