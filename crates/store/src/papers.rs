//! The literature in the lineage store: papers with their authors and sections, citation edges,
//! datasets linked to papers, technique cards, and the cards each trial cites.

use crate::rows::get;
use crate::{Result, Store, StoreError, now_ms, q};
use postdoc_core::TrialNo;
use postdoc_core::literature::{Card, Citation, Paper, Section};
use sqlx::any::AnyRow;

fn corrupt(what: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt { what, detail: e.to_string() }
}

fn paper(r: &AnyRow, authors: Vec<String>) -> Result<Paper> {
    let categories: String = get(r, "categories")?;
    Ok(Paper {
        id: get(r, "id")?,
        title: get(r, "title")?,
        abstract_text: get(r, "abstract")?,
        authors,
        year: get::<Option<i64>>(r, "year")?.map(|y| y as i32),
        published: get(r, "published")?,
        venue: get(r, "venue")?,
        arxiv: get(r, "arxiv")?,
        doi: get(r, "doi")?,
        s2: get(r, "s2")?,
        openalex: get(r, "openalex")?,
        url: get(r, "url")?,
        pdf_url: get(r, "pdf_url")?,
        citation_count: get::<Option<i64>>(r, "citation_count")?.map(|n| n as u64),
        influential_citation_count: get::<Option<i64>>(r, "influential_count")?.map(|n| n as u64),
        categories: serde_json::from_str(&categories).map_err(corrupt("paper categories"))?,
        source: get(r, "source")?,
    })
}

fn card(r: &AnyRow) -> Result<Card> {
    let evidence: String = get(r, "evidence")?;
    Ok(Card {
        id: get(r, "id")?,
        paper: get(r, "paper")?,
        technique: get(r, "technique")?,
        effect: get(r, "effect")?,
        setting: get(r, "setting")?,
        part: get(r, "part")?,
        section: get(r, "section")?,
        evidence: serde_json::from_str(&evidence).map_err(corrupt("card evidence"))?,
        method: get(r, "method")?,
    })
}

fn citation(r: &AnyRow) -> Result<Citation> {
    let contexts: String = get(r, "contexts")?;
    Ok(Citation {
        citing: get(r, "citing")?,
        cited: get(r, "cited")?,
        influential: get::<i64>(r, "influential")? != 0,
        contexts: serde_json::from_str(&contexts).map_err(corrupt("citation contexts"))?,
    })
}

impl Store {
    /// Records a paper, merged with what the store already knows of it (under the same key).
    pub async fn save_paper(&self, p: &Paper) -> Result<Paper> {
        let mut tx = self.begin().await?;
        let existing = sqlx::query("SELECT * FROM papers WHERE id = $1")
            .bind(&p.id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(q("read paper"))?;
        let merged = match existing {
            Some(row) => {
                let mut known = paper(&row, authors_in(&mut tx, &p.id).await?)?;
                known.merge(p.clone());
                // A merge may find a better key; the row keeps the one it is stored under.
                known.id = p.id.clone();
                known
            }
            None => p.clone(),
        };
        let now = now_ms();
        sqlx::query(
            "INSERT INTO papers (id, title, abstract, year, published, venue, arxiv, doi, s2, openalex, url, pdf_url,
                                 citation_count, influential_count, categories, source, added_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17)
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, abstract = excluded.abstract, year = excluded.year,
               published = excluded.published, venue = excluded.venue, arxiv = excluded.arxiv, doi = excluded.doi,
               s2 = excluded.s2, openalex = excluded.openalex, url = excluded.url, pdf_url = excluded.pdf_url,
               citation_count = excluded.citation_count, influential_count = excluded.influential_count,
               categories = excluded.categories, updated_ms = excluded.updated_ms",
        )
        .bind(&merged.id)
        .bind(&merged.title)
        .bind(merged.abstract_text.as_deref())
        .bind(merged.year.map(i64::from))
        .bind(merged.published.as_deref())
        .bind(merged.venue.as_deref())
        .bind(merged.arxiv.as_deref())
        .bind(merged.doi.as_deref())
        .bind(merged.s2.as_deref())
        .bind(merged.openalex.as_deref())
        .bind(merged.url.as_deref())
        .bind(merged.pdf_url.as_deref())
        .bind(merged.citation_count.map(|n| n as i64))
        .bind(merged.influential_citation_count.map(|n| n as i64))
        .bind(serde_json::to_string(&merged.categories).expect("strings serialize"))
        .bind(&merged.source)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(q("save paper"))?;
        sqlx::query("DELETE FROM paper_authors WHERE paper = $1")
            .bind(&merged.id)
            .execute(&mut *tx)
            .await
            .map_err(q("save authors"))?;
        for (i, name) in merged.authors.iter().enumerate() {
            sqlx::query("INSERT INTO paper_authors (paper, position, name) VALUES ($1, $2, $3)")
                .bind(&merged.id)
                .bind(i as i64)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(q("save authors"))?;
        }
        tx.commit().await.map_err(q("commit"))?;
        Ok(merged)
    }

    pub async fn paper(&self, id: &str) -> Result<Option<Paper>> {
        let mut conn = self.pool.acquire().await.map_err(q("connect"))?;
        let row = sqlx::query("SELECT * FROM papers WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(q("read paper"))?;
        match row {
            Some(r) => Ok(Some(paper(&r, authors_in(&mut conn, id).await?)?)),
            None => Ok(None),
        }
    }

    /// Every paper, in the order they were added.
    pub async fn papers(&self) -> Result<Vec<Paper>> {
        let rows = sqlx::query("SELECT * FROM papers ORDER BY added_ms, id")
            .fetch_all(&self.pool)
            .await
            .map_err(q("read papers"))?;
        let authors = sqlx::query("SELECT paper, name FROM paper_authors ORDER BY paper, position")
            .fetch_all(&self.pool)
            .await
            .map_err(q("read authors"))?;
        let mut by_paper: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
        for a in &authors {
            by_paper.entry(get(a, "paper")?).or_default().push(get(a, "name")?);
        }
        rows.iter().map(|r| paper(r, by_paper.remove(&get::<String>(r, "id")?).unwrap_or_default())).collect()
    }

    /// Records a citation edge; seen again, it keeps every context and is influential if either
    /// record says so.
    pub async fn save_citation(&self, c: &Citation) -> Result<()> {
        let mut tx = self.begin().await?;
        let existing = sqlx::query("SELECT * FROM citations WHERE citing = $1 AND cited = $2")
            .bind(&c.citing)
            .bind(&c.cited)
            .fetch_optional(&mut *tx)
            .await
            .map_err(q("read citation"))?;
        let mut merged = c.clone();
        if let Some(row) = existing {
            let known = citation(&row)?;
            merged.influential |= known.influential;
            for ctx in known.contexts {
                if !merged.contexts.contains(&ctx) {
                    merged.contexts.push(ctx);
                }
            }
        }
        sqlx::query(
            "INSERT INTO citations (citing, cited, influential, contexts) VALUES ($1, $2, $3, $4)
             ON CONFLICT (citing, cited) DO UPDATE SET influential = excluded.influential, contexts = excluded.contexts",
        )
        .bind(&merged.citing)
        .bind(&merged.cited)
        .bind(i64::from(merged.influential))
        .bind(serde_json::to_string(&merged.contexts).expect("strings serialize"))
        .execute(&mut *tx)
        .await
        .map_err(q("save citation"))?;
        tx.commit().await.map_err(q("commit"))
    }

    /// Every citation edge.
    pub async fn citations(&self) -> Result<Vec<Citation>> {
        let rows = sqlx::query("SELECT * FROM citations ORDER BY citing, cited")
            .fetch_all(&self.pool)
            .await
            .map_err(q("read citations"))?;
        rows.iter().map(citation).collect()
    }

    /// The edges of one paper: what it cites and what cites it.
    pub async fn citations_of(&self, id: &str) -> Result<Vec<Citation>> {
        let rows = sqlx::query("SELECT * FROM citations WHERE citing = $1 OR cited = $1 ORDER BY citing, cited")
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read citations"))?;
        rows.iter().map(citation).collect()
    }

    /// Replaces a paper's sections.
    pub async fn save_sections(&self, paper: &str, sections: &[Section]) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM paper_sections WHERE paper = $1")
            .bind(paper)
            .execute(&mut *tx)
            .await
            .map_err(q("save sections"))?;
        for (i, s) in sections.iter().enumerate() {
            sqlx::query("INSERT INTO paper_sections (paper, idx, kind, title, body) VALUES ($1, $2, $3, $4, $5)")
                .bind(paper)
                .bind(i as i64)
                .bind(&s.kind)
                .bind(&s.title)
                .bind(&s.text)
                .execute(&mut *tx)
                .await
                .map_err(q("save sections"))?;
        }
        tx.commit().await.map_err(q("commit"))
    }

    pub async fn sections(&self, paper: &str) -> Result<Vec<Section>> {
        let rows = sqlx::query("SELECT * FROM paper_sections WHERE paper = $1 ORDER BY idx")
            .bind(paper)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read sections"))?;
        rows.iter()
            .map(|r| Ok(Section { kind: get(r, "kind")?, title: get(r, "title")?, text: get(r, "body")? }))
            .collect()
    }

    /// Links a paper to a dataset (`relation`: `linked` by the Hub's page, `cites` by the
    /// dataset's card, `uses` by the paper's text).
    pub async fn link_dataset(&self, paper: &str, dataset: &str, relation: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO paper_datasets (paper, dataset, relation) VALUES ($1, $2, $3)
             ON CONFLICT (paper, dataset) DO NOTHING",
        )
        .bind(paper)
        .bind(dataset)
        .bind(relation)
        .execute(&self.pool)
        .await
        .map_err(q("link dataset"))?;
        Ok(())
    }

    /// Datasets linked to a paper, with how.
    pub async fn datasets_of_paper(&self, paper: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT dataset, relation FROM paper_datasets WHERE paper = $1 ORDER BY dataset")
            .bind(paper)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read paper datasets"))?;
        rows.iter().map(|r| Ok((get(r, "dataset")?, get(r, "relation")?))).collect()
    }

    /// Replaces a paper's cards of one method (`extractive`, `model:...`) with `cards`; returns
    /// them with their numbers.
    pub async fn save_cards(&self, paper: &str, method: &str, cards: &[Card]) -> Result<Vec<Card>> {
        let mut tx = self.begin().await?;
        // Cards a trial cites stay: only uncited ones of this method are replaced.
        sqlx::query(
            "DELETE FROM technique_cards WHERE paper = $1 AND method = $2 AND id NOT IN (SELECT card FROM trial_cards)",
        )
        .bind(paper)
        .bind(method)
        .execute(&mut *tx)
        .await
        .map_err(q("replace cards"))?;
        let mut saved = Vec::new();
        for c in cards {
            let row = sqlx::query(
                "INSERT INTO technique_cards (paper, technique, effect, setting, part, section, evidence, method, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            )
            .bind(paper)
            .bind(&c.technique)
            .bind(c.effect.as_deref())
            .bind(c.setting.as_deref())
            .bind(&c.part)
            .bind(&c.section)
            .bind(serde_json::to_string(&c.evidence).expect("evidence serializes"))
            .bind(method)
            .bind(now_ms())
            .fetch_one(&mut *tx)
            .await
            .map_err(q("save card"))?;
            saved.push(Card {
                id: get(&row, "id")?,
                paper: paper.to_string(),
                method: method.to_string(),
                ..c.clone()
            });
        }
        tx.commit().await.map_err(q("commit"))?;
        Ok(saved)
    }

    /// A paper's cards (`Some`), or every card (`None`), in order.
    pub async fn cards(&self, paper: Option<&str>) -> Result<Vec<Card>> {
        let rows = match paper {
            Some(p) => {
                sqlx::query("SELECT * FROM technique_cards WHERE paper = $1 ORDER BY id")
                    .bind(p)
                    .fetch_all(&self.pool)
                    .await
            }
            None => sqlx::query("SELECT * FROM technique_cards ORDER BY id").fetch_all(&self.pool).await,
        }
        .map_err(q("read cards"))?;
        rows.iter().map(card).collect()
    }

    pub async fn card(&self, id: i64) -> Result<Option<Card>> {
        let row = sqlx::query("SELECT * FROM technique_cards WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read card"))?;
        row.as_ref().map(card).transpose()
    }

    /// Every card a study's trials cite, with its paper's title: `(trial, card, title)`, in one
    /// query however many trials cite.
    pub async fn cited_cards(&self, study: i64) -> Result<Vec<(TrialNo, Card, String)>> {
        let rows = sqlx::query(
            "SELECT t.trial AS citing_trial, p.title AS paper_title, c.*
             FROM trial_cards t JOIN technique_cards c ON c.id = t.card JOIN papers p ON p.id = c.paper
             WHERE t.study_id = $1 ORDER BY t.trial, c.id",
        )
        .bind(study)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read cited cards"))?;
        rows.iter().map(|r| Ok((get::<i64>(r, "citing_trial")? as TrialNo, card(r)?, get(r, "paper_title")?))).collect()
    }

    /// How many citation edges each paper has, as `(paper, references, cited by)`.
    pub async fn citation_counts(&self) -> Result<Vec<(String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT p.id,
                    (SELECT COUNT(*) FROM citations c WHERE c.citing = p.id) AS refs,
                    (SELECT COUNT(*) FROM citations c WHERE c.cited = p.id) AS cited
             FROM papers p ORDER BY p.id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(q("count citations"))?;
        rows.iter().map(|r| Ok((get(r, "id")?, get(r, "refs")?, get(r, "cited")?))).collect()
    }

    /// The cards a trial cites, with their papers.
    pub async fn cards_of_trial(&self, study: i64, trial: TrialNo) -> Result<Vec<Card>> {
        let rows = sqlx::query(
            "SELECT c.* FROM technique_cards c JOIN trial_cards t ON t.card = c.id
             WHERE t.study_id = $1 AND t.trial = $2 ORDER BY c.id",
        )
        .bind(study)
        .bind(trial as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read trial cards"))?;
        rows.iter().map(card).collect()
    }
}

async fn authors_in(conn: &mut sqlx::AnyConnection, paper: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT name FROM paper_authors WHERE paper = $1 ORDER BY position")
        .bind(paper)
        .fetch_all(&mut *conn)
        .await
        .map_err(q("read authors"))?;
    rows.iter().map(|r| get(r, "name")).collect()
}
