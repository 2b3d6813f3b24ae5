//! Technique cards: for each methodological contribution of a paper, the technique, the effect it
//! claims (with its numbers), the setting it was shown in, the part of a recipe it touches, and
//! the sentence each of these rests on. This module extracts them without a model, from the
//! abstract and the method, experiments and results sections: sentences that announce a
//! contribution give techniques, sentences with figures and comparisons give effects. A card's
//! every field cites the sentence it came from, so a reader can check it.

use crate::model::{Card, Evidence, Section};
use crate::sections::sentences;
use std::collections::BTreeMap;

/// The parts of a recipe a technique can touch, as specialists own them.
pub const PARTS: [&str; 7] = ["optimizer", "data", "loss", "architecture", "rl", "systems", "evaluation"];

const CONTRIBUTION: [&str; 14] = [
    "we propose",
    "we introduce",
    "we present",
    "we develop",
    "we design",
    "this paper proposes",
    "this paper introduces",
    "this work proposes",
    "our method",
    "our approach",
    "we devise",
    "we describe",
    "is proposed",
    "is introduced",
];

const EFFECT_WORDS: [&str; 18] = [
    "improv",
    "outperform",
    "reduc",
    "increas",
    "faster",
    "fewer",
    "better",
    "speedup",
    "speed-up",
    "gain",
    "match",
    "on par",
    "higher",
    "lower",
    "boost",
    "surpass",
    "state-of-the-art",
    "comparable",
];

const SETTING_WORDS: [&str; 16] = [
    "benchmark",
    "dataset",
    "gpt",
    "llama",
    "bert",
    "roberta",
    "t5",
    "resnet",
    "imagenet",
    "glue",
    "gsm8k",
    "mmlu",
    "cifar",
    "billion",
    "parameters",
    "tasks",
];

/// Keywords that say which part of a recipe a text is about.
fn part_keywords(part: &str) -> &'static [&'static str] {
    match part {
        "optimizer" => &[
            "optimizer",
            "learning rate",
            "adam",
            "sgd",
            "momentum",
            "schedule",
            "warmup",
            "weight decay",
            "gradient",
            "batch size",
            "low-rank",
            "fine-tun",
            "adapter",
        ],
        "data" => &[
            "data",
            "dataset",
            "curriculum",
            "filter",
            "dedup",
            "mixture",
            "augment",
            "synthetic",
            "sampling",
            "corpus",
            "example",
        ],
        "loss" => &[
            "loss",
            "objective",
            "cross-entropy",
            "regulari",
            "label smoothing",
            "distillation",
            "contrastive",
            "likelihood",
        ],
        "architecture" => &[
            "architecture",
            "layer",
            "attention",
            "transformer",
            "embedding",
            "head",
            "residual",
            "normali",
            "activation",
            "width",
            "depth",
            "mixture of experts",
        ],
        "rl" => &["reinforcement", "reward", "policy", "ppo", "grpo", "dpo", "rlhf", "preference", "advantage", "kl"],
        "systems" => &[
            "throughput",
            "memory",
            "latency",
            "quantiz",
            "kernel",
            "parallel",
            "gpu",
            "inference",
            "compute",
            "precision",
            "flops",
        ],
        "evaluation" => &["evaluat", "metric", "benchmark suite", "contamination", "judge"],
        _ => &[],
    }
}

/// The part of a recipe `text` is most about (`other` when no keyword is found).
pub fn part_of(text: &str) -> String {
    let t = text.to_lowercase();
    let mut best = ("other", 0usize);
    for part in PARTS {
        let score: usize = part_keywords(part).iter().map(|k| t.matches(k).count()).sum();
        if score > best.1 {
            best = (part, score);
        }
    }
    best.0.to_string()
}

fn has_number(s: &str) -> bool {
    s.chars().any(|c| c.is_ascii_digit())
}

/// The technique's name in a sentence that announces it: an acronym in parentheses
/// (`Low-Rank Adaptation (LoRA)`), `X, or Y,`, `called X` / `named X`, else the words after the
/// announcing phrase up to the first comma or clause.
pub fn technique_name(sentence: &str) -> String {
    // `(LoRA)` or `(GRPO)`: a short name of capitals, digits and dashes.
    for part in sentence.split('(').skip(1) {
        let inner = part.split(')').next().unwrap_or("");
        if (2..=12).contains(&inner.len())
            && inner.chars().any(|c| c.is_ascii_uppercase())
            && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !inner.chars().all(|c| c.is_ascii_digit())
        {
            let before = sentence.split('(').next().unwrap_or("").trim();
            let long: Vec<&str> = before
                .split_whitespace()
                .rev()
                .take_while(|w| w.chars().next().is_some_and(char::is_uppercase) || w.contains('-'))
                .collect();
            let long: Vec<&str> = long.into_iter().rev().collect();
            return if long.len() >= 2 { format!("{} ({inner})", long.join(" ")) } else { inner.to_string() };
        }
    }
    let lower = sentence.to_lowercase();
    for cue in ["called ", "named ", "dubbed ", ", or "] {
        if let Some(i) = lower.find(cue) {
            let rest = &sentence[i + cue.len()..];
            let name: String = rest
                .split([',', ';', '.', ':'])
                .next()
                .unwrap_or("")
                .split_whitespace()
                .take(6)
                .collect::<Vec<_>>()
                .join(" ");
            if !name.is_empty() {
                return name;
            }
        }
    }
    for cue in CONTRIBUTION {
        if let Some(i) = lower.find(cue) {
            let rest = &sentence[i + cue.len()..];
            let rest = rest
                .trim_start_matches([' ', ':'])
                .trim_start_matches("a ")
                .trim_start_matches("an ")
                .trim_start_matches("the ");
            let stop = rest.find([',', ';', ':']).unwrap_or(rest.len());
            let words: Vec<&str> = rest[..stop]
                .split_whitespace()
                .take_while(|w| !["that", "which", "to", "for", "where"].contains(w))
                .take(10)
                .collect();
            if !words.is_empty() {
                return words.join(" ").trim_end_matches('.').to_string();
            }
        }
    }
    sentence.split_whitespace().take(10).collect::<Vec<_>>().join(" ")
}

/// Cards for one paper, at most `max`.
pub fn extract(paper: &str, abstract_text: Option<&str>, sections: &[Section], max: usize) -> Vec<Card> {
    // Sentences by the section they are in: the abstract first, then the body.
    let mut pool: Vec<(String, String)> = Vec::new();
    if let Some(a) = abstract_text {
        pool.extend(sentences(a).into_iter().map(|s| ("abstract".to_string(), s)));
    }
    for s in sections.iter().filter(|s| {
        ["abstract", "introduction", "method", "experiments", "results", "conclusion"].contains(&s.kind.as_str())
    }) {
        // The abstract given apart is not read twice.
        if s.kind == "abstract" && abstract_text.is_some() {
            continue;
        }
        pool.extend(sentences(&s.text).into_iter().map(|t| (s.kind.clone(), t)));
    }
    let announces = |s: &str| {
        let l = s.to_lowercase();
        CONTRIBUTION.iter().any(|c| l.contains(c))
    };
    let claims = |s: &str| {
        let l = s.to_lowercase();
        has_number(s) && EFFECT_WORDS.iter().any(|w| l.contains(w))
    };
    let mut cards: Vec<Card> = Vec::new();
    for (section, sentence) in pool.iter().filter(|(_, s)| announces(s)) {
        if cards.len() >= max {
            break;
        }
        let technique = technique_name(sentence);
        if technique.len() < 3 || cards.iter().any(|c| c.technique.eq_ignore_ascii_case(&technique)) {
            continue;
        }
        let name = technique.split(" (").last().unwrap_or(&technique).trim_end_matches(')').to_lowercase();
        let words: Vec<String> = sentence
            .to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 4)
            .map(str::to_string)
            .collect();
        // The effect: a claim with figures, naming the technique if one does, else sharing the
        // most words with its announcement.
        let effect = pool
            .iter()
            .filter(|(_, s)| claims(s))
            .max_by_key(|(_, s)| {
                let l = s.to_lowercase();
                let names = usize::from(l.contains(&name)) * 100;
                // Figures that are measurements (`10,000`, `3.2%`, `2x`), not names (`GPT-3`).
                let figures = s
                    .split_whitespace()
                    .filter(|w| {
                        let w = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '%');
                        w.chars().next().is_some_and(|c| c.is_ascii_digit())
                            && w.chars().all(|c| c.is_ascii_digit() || ",.%x".contains(c))
                    })
                    .count();
                names + words.iter().filter(|w| l.contains(w.as_str())).count() + 3 * figures
            })
            .cloned();
        // The setting: a sentence naming models, data or tasks, other than the effect's if one is.
        let settings: Vec<&(String, String)> = pool
            .iter()
            .filter(|(_, s)| {
                let l = s.to_lowercase();
                SETTING_WORDS.iter().filter(|w| l.contains(*w)).count() >= 2
            })
            .collect();
        let setting = settings
            .iter()
            .find(|(_, s)| effect.as_ref().is_none_or(|(_, e)| e != s))
            .or(settings.first())
            .map(|c| (*c).clone());
        let mut evidence = BTreeMap::new();
        evidence.insert("technique".to_string(), Evidence { section: section.clone(), sentence: sentence.clone() });
        if let Some((sec, s)) = &effect {
            evidence.insert("effect".to_string(), Evidence { section: sec.clone(), sentence: s.clone() });
        }
        if let Some((sec, s)) = &setting {
            evidence.insert("setting".to_string(), Evidence { section: sec.clone(), sentence: s.clone() });
        }
        let about = format!("{sentence} {}", effect.as_ref().map(|(_, e)| e.as_str()).unwrap_or(""));
        cards.push(Card {
            id: 0,
            paper: paper.to_string(),
            technique,
            effect: effect.map(|(_, e)| e),
            setting: setting.map(|(_, s)| s),
            part: part_of(&about),
            section: section.clone(),
            evidence,
            method: "extractive".into(),
        });
    }
    cards
}

/// The sentences a model is shown, numbered from 1: the abstract, then the introduction,
/// method, experiments and results sections, at most `max`.
pub fn numbered_sentences(abstract_text: Option<&str>, sections: &[Section], max: usize) -> Vec<(String, String)> {
    let mut pool: Vec<(String, String)> = Vec::new();
    if let Some(a) = abstract_text {
        pool.extend(sentences(a).into_iter().map(|s| ("abstract".to_string(), s)));
    }
    for s in sections.iter().filter(|s| ["introduction", "method", "experiments", "results"].contains(&s.kind.as_str()))
    {
        pool.extend(sentences(&s.text).into_iter().map(|t| (s.kind.clone(), t)));
    }
    if abstract_text.is_none() {
        for s in sections.iter().filter(|s| s.kind == "abstract") {
            pool.splice(0..0, sentences(&s.text).into_iter().map(|t| ("abstract".to_string(), t)));
        }
    }
    pool.truncate(max);
    pool
}

/// The tool a model records cards with: every field names the number of the sentence it rests
/// on, so a card can be checked against the paper.
pub fn record_cards_tool() -> postdoc_brain::ToolSpec {
    let mut parts: Vec<&str> = PARTS.to_vec();
    parts.push("other");
    postdoc_brain::ToolSpec {
        name: "record_cards".into(),
        description:
            "Records the paper's methodological contributions, one card each. Every field cites the number of \
                      the sentence it is taken from."
                .into(),
        parameters: serde_json::json!({
            "type": "object",
            "properties": {"cards": {"type": "array", "items": {"type": "object", "properties": {
                "technique": {"type": "string", "description": "the technique's name, as the paper gives it"},
                "technique_sentence": {"type": "integer"},
                "effect": {"type": "string", "description": "the effect the paper claims, with its numbers"},
                "effect_sentence": {"type": "integer"},
                "setting": {"type": "string", "description": "the models, data or tasks it was shown on"},
                "setting_sentence": {"type": "integer"},
                "part": {"type": "string", "enum": parts}
            }, "required": ["technique", "technique_sentence", "part"]}}},
            "required": ["cards"]
        }),
    }
}

/// What a model recorded, checked: a card whose technique cites no sentence of the paper is
/// dropped; an effect or setting whose citation is not a sentence of the paper is dropped from
/// its card. The evidence is the cited sentence, never the model's words.
pub fn cards_from_call(
    paper: &str,
    method: &str,
    arguments: &str,
    pool: &[(String, String)],
) -> Result<Vec<Card>, String> {
    let v: serde_json::Value =
        serde_json::from_str(arguments).map_err(|e| format!("the model's cards are not JSON: {e}"))?;
    let items = v.get("cards").and_then(serde_json::Value::as_array).ok_or("the model recorded no `cards` list")?;
    let sentence = |item: &serde_json::Value, key: &str| -> Option<&(String, String)> {
        let n = item.get(key)?.as_u64()? as usize;
        pool.get(n.checked_sub(1)?)
    };
    let text = |item: &serde_json::Value, key: &str| {
        item.get(key).and_then(serde_json::Value::as_str).map(str::trim).filter(|t| !t.is_empty()).map(str::to_string)
    };
    let mut cards = Vec::new();
    for item in items {
        let (Some(technique), Some((section, cited))) = (text(item, "technique"), sentence(item, "technique_sentence"))
        else {
            continue;
        };
        let mut evidence = BTreeMap::new();
        evidence.insert("technique".to_string(), Evidence { section: section.clone(), sentence: cited.clone() });
        let mut field = |name: &str| -> Option<String> {
            let value = text(item, name)?;
            let (sec, s) = sentence(item, &format!("{name}_sentence"))?;
            evidence.insert(name.to_string(), Evidence { section: sec.clone(), sentence: s.clone() });
            Some(value)
        };
        let effect = field("effect");
        let setting = field("setting");
        let part = text(item, "part").filter(|p| PARTS.contains(&p.as_str())).unwrap_or_else(|| part_of(cited));
        cards.push(Card {
            id: 0,
            paper: paper.to_string(),
            technique,
            effect,
            setting,
            part,
            section: section.clone(),
            evidence,
            method: method.to_string(),
        });
    }
    Ok(cards)
}

/// Cards written by a model: it is shown the paper's sentences, numbered, and must record its
/// cards through [`record_cards_tool`], each field citing a sentence; what it cites is checked.
pub async fn extract_with_model(
    brain: &dyn postdoc_brain::Brain,
    paper: &str,
    title: &str,
    abstract_text: Option<&str>,
    sections: &[Section],
) -> Result<Vec<Card>, String> {
    let pool = numbered_sentences(abstract_text, sections, 160);
    if pool.is_empty() {
        return Err("the paper has no text to read cards from".into());
    }
    let mut listing = format!("Paper: {title}\n\n");
    for (i, (section, s)) in pool.iter().enumerate() {
        listing.push_str(&format!("[{}] ({section}) {s}\n", i + 1));
    }
    let conversation = postdoc_brain::Conversation {
        system: "You read machine-learning papers for a researcher who tunes training recipes. Record each \
                 methodological contribution of the paper as a technique card: the technique, the effect the paper \
                 claims for it (with its numbers), the setting it was shown in, and the part of a training recipe it \
                 changes. Every field must cite the number of the sentence it comes from. Record only what the \
                 sentences say; at most three cards."
            .into(),
        messages: vec![postdoc_brain::Message::User { text: listing }],
        tools: vec![record_cards_tool()],
    };
    let options = postdoc_brain::ReplyOptions {
        max_tokens: 1024,
        temperature: Some(0.0),
        tool_choice: postdoc_brain::ToolChoice::Tool("record_cards".into()),
    };
    let reply = brain.reply(&conversation, &options).await.map_err(|e| e.to_string())?;
    let call = reply.tool_calls.iter().find(|c| c.name == "record_cards").ok_or("the model recorded no cards")?;
    cards_from_call(paper, &format!("model:{}", brain.describe()), &call.arguments, &pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABSTRACT: &str = "An important paradigm of natural language processing consists of large-scale pre-training on \
        general domain data and adaptation to particular tasks. As we pre-train larger models, full fine-tuning becomes \
        less feasible. We propose Low-Rank Adaptation (LoRA), which freezes the pre-trained model weights and injects \
        trainable rank decomposition matrices into each layer of the Transformer architecture. Compared to GPT-3 175B \
        fine-tuned with Adam, LoRA can reduce the number of trainable parameters by 10,000 times and the GPU memory \
        requirement by 3 times. LoRA performs on-par or better than fine-tuning in model quality on RoBERTa, DeBERTa, \
        GPT-2, and GPT-3.";

    #[test]
    fn a_card_names_the_technique_its_effect_and_where_each_comes_from() {
        let cards = extract("arxiv:2106.09685", Some(ABSTRACT), &[], 3);
        assert_eq!(cards.len(), 1, "{cards:#?}");
        let c = &cards[0];
        assert_eq!(c.technique, "Low-Rank Adaptation (LoRA)");
        assert!(c.effect.as_deref().unwrap().contains("by 10,000 times"), "{:?}", c.effect);
        assert!(c.setting.as_deref().unwrap().contains("GPT-3"), "{:?}", c.setting);
        assert_eq!(c.evidence["technique"].section, "abstract");
        assert!(c.evidence["technique"].sentence.starts_with("We propose Low-Rank Adaptation"));
        assert_eq!(c.evidence["effect"].sentence, c.effect.clone().unwrap());
        assert_eq!(c.part, "optimizer", "a way to fine-tune: {c:?}");
        assert!(c.setting.as_deref().unwrap().starts_with("LoRA performs on-par"), "{:?}", c.setting);
        // Every cited sentence is in the text.
        for e in c.evidence.values() {
            assert!(ABSTRACT.split_whitespace().collect::<Vec<_>>().join(" ").contains(&e.sentence), "{e:?}");
        }
    }

    #[test]
    fn techniques_are_named_by_their_announcement() {
        assert_eq!(
            technique_name("We introduce Group Relative Policy Optimization (GRPO), a variant of PPO."),
            "Group Relative Policy Optimization (GRPO)"
        );
        assert_eq!(
            technique_name("We propose a simple curriculum that orders examples by length."),
            "simple curriculum"
        );
        assert_eq!(technique_name("We present a method called DoReMi, which reweights domains."), "DoReMi");
        assert_eq!(part_of("reweights the data mixture of pretraining domains"), "data");
        assert_eq!(part_of("a reward model and a KL penalty on the policy"), "rl");
        assert_eq!(part_of("nothing here"), "other");
    }

    #[test]
    fn a_model_s_cards_keep_only_what_cites_the_paper() {
        let pool = numbered_sentences(Some(ABSTRACT), &[], 100);
        let args = serde_json::json!({"cards": [
            {"technique": "LoRA", "technique_sentence": 3, "effect": "10,000x fewer trainable parameters", "effect_sentence": 4,
             "setting": "GPT-3 175B", "setting_sentence": 99, "part": "optimizer"},
            {"technique": "Invented", "technique_sentence": 0, "part": "data"},
            {"technique": "", "technique_sentence": 1, "part": "data"},
            {"technique": "Odd part", "technique_sentence": 5, "part": "astrology"}
        ]});
        let cards = cards_from_call("arxiv:2106.09685", "model:test", &args.to_string(), &pool).unwrap();
        assert_eq!(cards.len(), 2, "a card citing no sentence of the paper is dropped: {cards:#?}");
        assert!(cards[0].evidence["technique"].sentence.starts_with("We propose Low-Rank Adaptation"));
        assert!(cards[0].evidence["effect"].sentence.contains("10,000 times"));
        assert_eq!(cards[0].setting, None, "its citation is not a sentence of the paper");
        assert_eq!(cards[0].method, "model:test");
        assert_ne!(cards[1].part, "astrology");
        assert!(cards_from_call("p", "m", "not json", &pool).is_err());
        assert!(cards_from_call("p", "m", "{}", &pool).is_err());
    }

    #[test]
    fn a_paper_without_an_announced_contribution_has_no_card() {
        assert!(extract("p", Some("We survey the field. Many methods exist."), &[], 3).is_empty());
        let body = [Section { kind: "method".into(), title: "Method".into(), text: "Our method adds a warmup of 500 steps to the learning rate schedule. It improves accuracy by 2.1 points on GSM8K.".into() }];
        let cards = extract("p", None, &body, 3);
        assert_eq!(cards.len(), 1);
        assert_eq!(cards[0].part, "optimizer");
        assert_eq!(cards[0].section, "method");
        assert!(cards[0].effect.as_deref().unwrap().contains("2.1 points"));
    }
}
