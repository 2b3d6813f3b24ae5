//! Constrained decoding of one tool call. postdoc writes the JSON's structure; at each value the
//! model picks a token the value's type allows (the likeliest, or one drawn at a temperature): a
//! tool name, an optional argument or an enumerated value (prefix by prefix), digits for a
//! number, text without quotes for a string.

use crate::Engine;
use postdoc_brain::ToolSpec;
use serde_json::{Map, Value};

/// Longest string value the model may write, in bytes.
const MAX_STRING: usize = 600;
/// Longest number, in characters.
const MAX_NUMBER: usize = 24;

/// Tokens a sampled choice is drawn from: the likeliest ones the value allows.
const SAMPLED_FROM: usize = 20;

pub(crate) struct Writer<'e> {
    engine: &'e mut Engine,
    logits: Vec<f32>,
    budget: usize,
    written: usize,
    /// Greedy when None; otherwise tokens are drawn at this temperature from `random`, a
    /// seeded generator, so a conversation still replays the same way.
    temperature: Option<f32>,
    random: u64,
}

impl<'e> Writer<'e> {
    pub(crate) fn new(
        engine: &'e mut Engine,
        logits: Vec<f32>,
        budget: usize,
        temperature: Option<f32>,
        seed: u64,
    ) -> Writer<'e> {
        let temperature = temperature.filter(|t| *t > 0.0 && t.is_finite());
        Writer { engine, logits, budget, written: 0, temperature, random: seed | 1 }
    }

    /// Tokens written so far, forced ones included.
    pub(crate) fn written(&self) -> usize {
        self.written
    }

    /// Writes `{"name": ..., "arguments": {...}}` and returns the name and the arguments' JSON.
    /// Every required argument is written; the model may add optional ones or close the object.
    pub(crate) fn tool_call(&mut self, tools: &[ToolSpec]) -> Result<(String, String), String> {
        self.force("<tool_call>\n{\"name\": ")?;
        let names: Vec<String> = tools.iter().map(|t| Value::String(t.name.clone()).to_string()).collect();
        let tool = &tools[self.choose(&names)?];
        self.force(", \"arguments\": {")?;
        let schema = |key: &str| tool.parameters.pointer(&format!("/properties/{key}")).cloned().unwrap_or(Value::Null);
        let required: Vec<String> = tool
            .parameters
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default();
        let mut optional: Vec<String> = tool
            .parameters
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().filter(|k| !required.contains(k)).cloned().collect())
            .unwrap_or_default();
        let mut arguments = Map::new();
        for key in &required {
            let lead = if arguments.is_empty() { "" } else { ", " };
            self.force(&format!("{lead}{}: ", Value::String(key.clone())))?;
            arguments.insert(key.clone(), self.value(&schema(key))?);
        }
        while !optional.is_empty() {
            let lead = if arguments.is_empty() { "" } else { ", " };
            let mut options = vec!["}".to_string()];
            options.extend(optional.iter().map(|k| format!("{lead}{}: ", Value::String(k.clone()))));
            let picked = self.choose(&options)?;
            if picked == 0 {
                self.force("}")?;
                return Ok((tool.name.clone(), Value::Object(arguments).to_string()));
            }
            let key = optional.remove(picked - 1);
            arguments.insert(key.clone(), self.value(&schema(&key))?);
        }
        self.force("}}")?;
        Ok((tool.name.clone(), Value::Object(arguments).to_string()))
    }

    /// A value of `schema`, as JSON.
    fn value(&mut self, schema: &Value) -> Result<Value, String> {
        if let Some(options) = schema.get("enum").and_then(Value::as_array).filter(|o| !o.is_empty()) {
            let texts: Vec<String> = options.iter().map(Value::to_string).collect();
            return Ok(options[self.choose(&texts)?].clone());
        }
        let boolean = |writer: &mut Self| -> Result<Value, String> {
            Ok(Value::Bool(writer.choose(&["true".to_string(), "false".to_string()])? == 0))
        };
        match schema.get("type").and_then(Value::as_str) {
            Some("string") => {
                self.force("\"")?;
                Ok(Value::String(self.string()?))
            }
            Some("integer") => self.number(true),
            Some("number") => self.number(false),
            Some("boolean") => boolean(self),
            // Any scalar: the model's first token says which.
            _ => {
                let first = self
                    .pick(|b| matches!(b[0], b'0'..=b'9' | b'-' | b'"' | b't' | b'f'))
                    .ok_or("no token starts a value")?;
                match self.engine.vocab.bytes[first as usize][0] {
                    b'"' => {
                        self.force("\"")?;
                        Ok(Value::String(self.string()?))
                    }
                    b't' | b'f' => boolean(self),
                    _ => self.number(false),
                }
            }
        }
    }

    /// Text up to a closing quote (which is written), at least one byte long.
    fn string(&mut self) -> Result<String, String> {
        let plain = |c: u8| (b' '..=b'~').contains(&c) && c != b'"' && c != b'\\' || c == b'\n' || c == b'\t';
        let mut value: Vec<u8> = Vec::new();
        while value.len() < MAX_STRING {
            let empty = value.is_empty();
            let token = self
                .pick(|b| {
                    let (last, body) = b.split_last().expect("tokens are not empty");
                    b.iter().all(|c| plain(*c))
                        || (*last == b'"' && body.iter().all(|c| plain(*c)) && !(empty && body.is_empty()))
                })
                .ok_or("no token continues the text")?;
            let bytes = self.engine.vocab.bytes[token as usize].clone();
            self.step(token)?;
            if bytes.last() == Some(&b'"') {
                value.extend_from_slice(&bytes[..bytes.len() - 1]);
                return Ok(String::from_utf8_lossy(&value).into_owned());
            }
            value.extend_from_slice(&bytes);
        }
        self.force("\"")?;
        Ok(String::from_utf8_lossy(&value).into_owned())
    }

    /// Digits (and, for a float, a point and an exponent) until the model would end the number.
    fn number(&mut self, integer: bool) -> Result<Value, String> {
        let numeric = |c: u8| c.is_ascii_digit() || c == b'-' || (!integer && matches!(c, b'.' | b'e' | b'E' | b'+'));
        let mut text = String::new();
        while text.len() < MAX_NUMBER {
            let has_digit = text.bytes().any(|c| c.is_ascii_digit());
            let token = self
                .pick(|b| b.iter().all(|c| numeric(*c)) || (has_digit && matches!(b[0], b',' | b'}' | b' ' | b'\n')))
                .ok_or("no token continues the number")?;
            let bytes = &self.engine.vocab.bytes[token as usize];
            if !bytes.iter().all(|c| numeric(*c)) {
                break; // the model ends it; the structure writes what follows
            }
            text.push_str(&String::from_utf8_lossy(bytes));
            self.step(token)?;
        }
        // Keep the longest start that parses ("1.5e" is 1.5), so the value is a number.
        while !text.is_empty() {
            if integer {
                if let Ok(n) = text.parse::<i64>() {
                    return Ok(Value::from(n));
                }
            } else if let Some(n) = text.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                return Ok(Value::Number(n));
            }
            text.pop();
        }
        Ok(Value::from(0))
    }

    /// The option the model prefers, written token by token. Where one option is written out and
    /// others go on from it, the model's choice between going on and ending (a token that starts
    /// with what may follow a value) decides.
    fn choose(&mut self, options: &[String]) -> Result<usize, String> {
        let mut so_far: Vec<u8> = Vec::new();
        loop {
            let longer = |so_far: &[u8], b: &[u8]| {
                let mut next = so_far.to_vec();
                next.extend_from_slice(b);
                options.iter().any(|o| o.as_bytes().starts_with(&next))
            };
            let done = options.iter().position(|o| o.as_bytes() == so_far.as_slice());
            let token = match self.pick(|b| longer(&so_far, b)) {
                None => return done.ok_or_else(|| format!("no token continues any of {options:?}")),
                Some(token) => token,
            };
            if let Some(done) = done {
                let end = self.best(|b| matches!(b[0], b',' | b'}' | b' ' | b'\n'));
                if end.is_some_and(|e| self.logits[e as usize] >= self.logits[token as usize]) {
                    return Ok(done);
                }
            }
            so_far.extend_from_slice(&self.engine.vocab.bytes[token as usize]);
            self.step(token)?;
        }
    }

    /// The token to write among those `ok` accepts: the likeliest, or one drawn at the
    /// temperature from the likeliest few.
    fn pick(&mut self, ok: impl Fn(&[u8]) -> bool) -> Option<u32> {
        let Some(temperature) = self.temperature else { return self.best(ok) };
        let allowed: Vec<u32> = self.ranked(ok).take(SAMPLED_FROM).collect();
        let top = self.logits[*allowed.first()? as usize];
        let weights: Vec<f64> = allowed
            .iter()
            .map(|&t| (f64::from(self.logits[t as usize] - top) / f64::from(temperature)).exp())
            .collect();
        // xorshift64*: enough randomness for a draw, and the same draws for the same seed.
        self.random ^= self.random >> 12;
        self.random ^= self.random << 25;
        self.random ^= self.random >> 27;
        let uniform = (self.random.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
        let mut target = uniform * weights.iter().sum::<f64>();
        for (token, weight) in allowed.iter().zip(&weights) {
            target -= weight;
            if target <= 0.0 {
                return Some(*token);
            }
        }
        allowed.last().copied()
    }

    /// The likeliest token whose bytes `ok` accepts.
    fn best(&self, ok: impl Fn(&[u8]) -> bool) -> Option<u32> {
        self.ranked(ok).next()
    }

    /// The tokens whose bytes `ok` accepts, likeliest first; never a control token.
    fn ranked<'a>(&'a self, ok: impl Fn(&[u8]) -> bool + 'a) -> impl Iterator<Item = u32> + 'a {
        let mut order: Vec<u32> = (0..self.logits.len() as u32).collect();
        order.sort_unstable_by(|a, b| self.logits[*b as usize].total_cmp(&self.logits[*a as usize]));
        let vocab = &self.engine.vocab;
        order.into_iter().filter(move |&t| {
            let t = t as usize;
            t < vocab.bytes.len() && !vocab.control[t] && !vocab.bytes[t].is_empty() && ok(&vocab.bytes[t])
        })
    }

    fn step(&mut self, token: u32) -> Result<(), String> {
        self.account(1)?;
        self.logits = self.engine.feed(&[token])?;
        Ok(())
    }

    fn force(&mut self, text: &str) -> Result<(), String> {
        let tokens = self.engine.vocab.encode(text)?;
        self.account(tokens.len())?;
        self.logits = self.engine.feed(&tokens)?;
        Ok(())
    }

    fn account(&mut self, tokens: usize) -> Result<(), String> {
        self.written += tokens;
        if self.written > self.budget {
            return Err(format!("the tool call did not fit in {} tokens", self.budget));
        }
        Ok(())
    }
}
