//! The tokenizer of a GGUF model, rebuilt from its metadata (no tokenizer.json ships with it):
//! GPT-2 style byte-level BPE, digits split one by one, special tokens kept whole.

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

/// GGUF's token type for control tokens (`<|im_start|>` and the like).
const CONTROL: i32 = 3;

pub(crate) struct Vocabulary {
    pub tokenizer: Tokenizer,
    /// The bytes each token stands for; control tokens hold their literal text.
    pub bytes: Vec<Vec<u8>>,
    pub control: Vec<bool>,
}

fn strings(content: &Content, key: &str) -> Result<Vec<String>, String> {
    let value = content.metadata.get(key).ok_or_else(|| format!("the model file has no `{key}`"))?;
    let items = value.to_vec().map_err(|e| format!("`{key}`: {e}"))?;
    items
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(format!("`{key}` holds {:?}, not text", other.value_type())),
        })
        .collect()
}

impl Vocabulary {
    pub(crate) fn from_gguf(content: &Content) -> Result<Vocabulary, String> {
        let model =
            content.metadata.get("tokenizer.ggml.model").and_then(|v| v.to_string().ok()).cloned().unwrap_or_default();
        if model != "gpt2" {
            return Err(format!("tokenizer `{model}` is not supported (only byte-level BPE, `gpt2`)"));
        }
        let tokens = strings(content, "tokenizer.ggml.tokens")?;
        let merges: Vec<(String, String)> = strings(content, "tokenizer.ggml.merges")?
            .into_iter()
            .filter_map(|m| m.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
            .collect();
        let types: Vec<i32> = match content.metadata.get("tokenizer.ggml.token_type") {
            Some(v) => v.to_vec().map_err(|e| e.to_string())?.iter().map(|t| t.to_i32().unwrap_or(1)).collect(),
            None => vec![1; tokens.len()],
        };
        let vocab: tokenizers::models::bpe::Vocab =
            tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| format!("cannot build the tokenizer: {e}"))?;
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, true).into(),
        ])));
        tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
        let control: Vec<bool> = (0..tokens.len()).map(|i| types.get(i) == Some(&CONTROL)).collect();
        let specials: Vec<AddedToken> =
            tokens.iter().zip(&control).filter(|(_, c)| **c).map(|(t, _)| AddedToken::from(t.clone(), true)).collect();
        tokenizer.add_special_tokens(&specials);
        let unicode_to_byte = unicode_to_byte();
        let bytes = tokens
            .iter()
            .zip(&control)
            .map(|(t, c)| {
                if *c {
                    t.as_bytes().to_vec()
                } else {
                    t.chars().map(|ch| unicode_to_byte.get(&ch).copied().unwrap_or(b'?')).collect()
                }
            })
            .collect();
        Ok(Vocabulary { tokenizer, bytes, control })
    }

    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        self.tokenizer.encode(text, false).map(|e| e.get_ids().to_vec()).map_err(|e| e.to_string())
    }
}

/// GPT-2's byte-level alphabet, inverted: every byte is written as a printable character (the
/// printable Latin-1 ones as themselves, the rest shifted past 255) so a vocabulary is text.
fn unicode_to_byte() -> std::collections::HashMap<char, u8> {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    let mut map = std::collections::HashMap::new();
    let mut shifted = 0u32;
    for b in 0..=255u8 {
        let ch = if printable(b) {
            char::from(b)
        } else {
            shifted += 1;
            char::from_u32(255 + shifted).expect("a valid character")
        };
        map.insert(ch, b);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_alphabet_covers_every_byte_once() {
        let map = unicode_to_byte();
        assert_eq!(map.len(), 256);
        assert_eq!(map[&'Ġ'], b' ', "GPT-2 writes a space as Ġ");
        assert_eq!(map[&'Ċ'], b'\n');
        assert_eq!(map[&'a'], b'a');
    }
}
