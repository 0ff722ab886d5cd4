//! A small pull reader over a JSON text.
//!
//! List pages are read with it instead of serde derive because a poll reads a few fields out of
//! megabytes of instance views: pulling tokens straight into the model's fields, with no
//! visitor layers in between, makes the typed read cost little more than validating the text.
//! Every value it passes over is still checked to be JSON, so a cut or broken page is an error.

use std::borrow::Cow;

/// Deeper than any ARM response; bounds the recursion of [`Reader::skip`] on hostile input.
const MAX_DEPTH: u32 = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {at}")]
pub struct SyntaxError {
    pub what: &'static str,
    pub at: usize,
}

pub type Result<T> = std::result::Result<T, SyntaxError>;

/// The type of the next value, known from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

struct Container {
    open: u8,
    close: u8,
    expected: &'static str,
    unclosed: &'static str,
}

const OBJECT: Container = Container {
    open: b'{',
    close: b'}',
    expected: "expected an object",
    unclosed: "expected ',' or '}' in an object",
};

const ARRAY: Container = Container {
    open: b'[',
    close: b']',
    expected: "expected an array",
    unclosed: "expected ',' or ']' in an array",
};

pub struct Reader<'a> {
    text: &'a str,
    pos: usize,
    depth: u32,
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            pos: 0,
            depth: 0,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn error<T>(&self, what: &'static str) -> Result<T> {
        Err(SyntaxError { what, at: self.pos })
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        let b = self.bytes();
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next non-whitespace byte, not consumed.
    #[inline]
    fn next_byte(&mut self) -> Result<u8> {
        self.skip_whitespace();
        match self.bytes().get(self.pos) {
            Some(&c) => Ok(c),
            None => self.error("unexpected end of input"),
        }
    }

    fn expect(&mut self, c: u8, what: &'static str) -> Result<()> {
        if self.next_byte()? == c {
            self.pos += 1;
            Ok(())
        } else {
            self.error(what)
        }
    }

    /// The type of the next value, which is not consumed.
    #[inline]
    pub fn peek(&mut self) -> Result<Kind> {
        Ok(match self.next_byte()? {
            b'{' => Kind::Object,
            b'[' => Kind::Array,
            b'"' => Kind::String,
            b'-' | b'0'..=b'9' => Kind::Number,
            b't' | b'f' => Kind::Bool,
            b'n' => Kind::Null,
            _ => return self.error("expected a JSON value"),
        })
    }

    /// Reads an object, calling `f` with each key; `f` must read or skip that key's value.
    pub fn object(&mut self, mut f: impl FnMut(&mut Self, &[u8]) -> Result<()>) -> Result<()> {
        self.items(&OBJECT, |r| {
            if r.next_byte()? != b'"' {
                return r.error("expected a key");
            }
            let key = r.key()?;
            r.expect(b':', "expected ':' after a key")?;
            f(r, &key)
        })
    }

    /// Reads an array, calling `f` once per element; `f` must read or skip it.
    pub fn array(&mut self, f: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        self.items(&ARRAY, f)
    }

    /// The comma-separated items of an object or array, brackets included.
    #[inline(always)]
    fn items(
        &mut self,
        c: &Container,
        mut item: impl FnMut(&mut Self) -> Result<()>,
    ) -> Result<()> {
        self.expect(c.open, c.expected)?;
        self.enter()?;
        if self.next_byte()? != c.close {
            loop {
                item(self)?;
                match self.next_byte()? {
                    b',' => self.pos += 1,
                    b if b == c.close => break,
                    _ => return self.error(c.unclosed),
                }
            }
        }
        self.pos += 1;
        self.depth -= 1;
        Ok(())
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.error("nested too deeply");
        }
        Ok(())
    }

    /// Reads a string, borrowed from the text unless it has escapes.
    #[inline]
    pub fn string(&mut self) -> Result<Cow<'a, str>> {
        if self.next_byte()? != b'"' {
            return self.error("expected a string");
        }
        let start = self.pos + 1;
        let i = find_special(self.bytes(), start);
        if self.bytes().get(i) == Some(&b'"') {
            self.pos = i + 1;
            // Slicing at ASCII bytes keeps to char boundaries.
            return Ok(Cow::Borrowed(&self.text[start..i]));
        }
        self.pos = i;
        self.decode_string(start).map(Cow::Owned)
    }

    /// The rest of a string that has escapes (or is broken), from its first special byte.
    #[cold]
    #[inline(never)]
    fn decode_string(&mut self, start: usize) -> Result<String> {
        let mut out = String::new();
        self.string_rest(start, Some(&mut out))?;
        Ok(out)
    }

    /// Scans on to the closing quote, appending the text from `run` on to `out` if given,
    /// with its escapes resolved.
    #[inline(always)]
    fn string_rest(&mut self, mut run: usize, mut out: Option<&mut String>) -> Result<()> {
        loop {
            let i = find_special(self.bytes(), self.pos);
            self.pos = i;
            match self.bytes().get(i) {
                Some(b'"') => {
                    self.pos += 1;
                    if let Some(out) = out {
                        out.push_str(&self.text[run..i]);
                    }
                    return Ok(());
                }
                Some(b'\\') => {
                    if let Some(out) = out.as_deref_mut() {
                        out.push_str(&self.text[run..i]);
                    }
                    self.pos += 1;
                    self.escape(out.as_deref_mut())?;
                    run = self.pos;
                }
                Some(_) => return self.error("control character in a string"),
                None => return self.error("unexpected end of input in a string"),
            }
        }
    }

    /// Reads an object key, the reader being at its opening quote. Keys are only compared
    /// with ASCII names, so they stay bytes.
    #[inline(always)]
    fn key(&mut self) -> Result<Cow<'a, [u8]>> {
        let b = self.bytes();
        let start = self.pos + 1;
        let i = find_special(b, start);
        if b.get(i) == Some(&b'"') {
            self.pos = i + 1;
            return Ok(Cow::Borrowed(&b[start..i]));
        }
        self.pos = i;
        self.decode_string(start)
            .map(|s| Cow::Owned(s.into_bytes()))
    }

    /// Passes over a string, checking it.
    fn skip_string(&mut self) -> Result<()> {
        self.pos += 1;
        self.string_rest(self.pos, None)
    }

    /// Reads the escape after a backslash, appending what it stands for to `out` if given.
    fn escape(&mut self, out: Option<&mut String>) -> Result<()> {
        let Some(&c) = self.bytes().get(self.pos) else {
            return self.error("unexpected end of input in a string");
        };
        self.pos += 1;
        let ch = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                match unit {
                    0xD800..=0xDBFF if self.bytes().get(self.pos..self.pos + 2) == Some(b"\\u") => {
                        let save = self.pos;
                        self.pos += 2;
                        let low = self.hex4()?;
                        if (0xDC00..=0xDFFF).contains(&low) {
                            let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                            char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
                        } else {
                            // A lone high surrogate; the next escape stands on its own.
                            self.pos = save;
                            char::REPLACEMENT_CHARACTER
                        }
                    }
                    // Lone surrogates are legal JSON syntax but not text: read as U+FFFD.
                    _ => char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER),
                }
            }
            _ => {
                self.pos -= 1;
                return self.error("invalid escape in a string");
            }
        };
        if let Some(out) = out {
            out.push(ch);
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32> {
        let Some(digits) = self.bytes().get(self.pos..self.pos + 4) else {
            return self.error("unexpected end of input in a string");
        };
        let mut n = 0;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return self.error("invalid \\u escape"),
            };
            n = n * 16 + u32::from(v);
        }
        self.pos += 4;
        Ok(n)
    }

    /// Reads a number, returning its text as written.
    pub fn number(&mut self) -> Result<&'a str> {
        self.skip_whitespace();
        let b = self.bytes();
        let start = self.pos;
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = digits(b, i),
            _ => {
                self.pos = i;
                return self.error("invalid number");
            }
        }
        if b.get(i) == Some(&b'.') {
            let j = digits(b, i + 1);
            if j == i + 1 {
                self.pos = j;
                return self.error("invalid number");
            }
            i = j;
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            let j = digits(b, i);
            if j == i {
                self.pos = j;
                return self.error("invalid number");
            }
            i = j;
        }
        self.pos = i;
        Ok(&self.text[start..i])
    }

    pub fn bool(&mut self) -> Result<bool> {
        if self.literal(b"true") {
            Ok(true)
        } else if self.literal(b"false") {
            Ok(false)
        } else {
            self.error("invalid literal")
        }
    }

    fn null(&mut self) -> Result<()> {
        if self.literal(b"null") {
            Ok(())
        } else {
            self.error("invalid literal")
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        self.skip_whitespace();
        let found = self.bytes().get(self.pos..self.pos + word.len()) == Some(word);
        if found {
            self.pos += word.len();
        }
        found
    }

    /// Passes over the next value of any type, checking it.
    pub fn skip(&mut self) -> Result<()> {
        match self.peek()? {
            Kind::String => self.skip_string(),
            Kind::Object => self.object(|r, _| r.skip()),
            Kind::Array => self.array(Self::skip),
            Kind::Number => self.number().map(drop),
            Kind::Bool => self.bool().map(drop),
            Kind::Null => self.null(),
        }
    }

    /// Checks that nothing but whitespace follows.
    pub fn end(&mut self) -> Result<()> {
        self.skip_whitespace();
        if self.pos == self.text.len() {
            Ok(())
        } else {
            self.error("trailing characters")
        }
    }
}

fn digits(b: &[u8], mut i: usize) -> usize {
    while let Some(b'0'..=b'9') = b.get(i) {
        i += 1;
    }
    i
}

/// The index of the first `"`, `\` or control character at or after `i`, or the length.
/// Eight bytes at a time: string contents are most of a page's bytes.
#[inline]
fn find_special(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let x = u64::from_le_bytes(*chunk);
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        // The classic "has a zero byte" test, and "has a byte below 0x20"; only the lowest
        // flagged byte is exact, which is the one wanted.
        let hits = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (x.wrapping_sub(ONES * 0x20) & !x);
        let hits = hits & HIGHS;
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip_all(text: &str) -> Result<()> {
        let mut r = Reader::new(text);
        r.skip()?;
        r.end()
    }

    #[test]
    fn accepts_what_serde_json_accepts() {
        for text in [
            "{}",
            "[]",
            " { \"a\" : [1, -2, 3.5, 1e3, -0.5E-7, 0, true, false, null, \"x\"] } ",
            r#"{"nested": {"deeper": [[{}], [], {"k": "v"}]}}"#,
            r#""escapes \" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00""#,
            "\"ünïcødé 😀\"",
            "12345678901234567890123",
        ] {
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_ok(),
                "{text}"
            );
            assert_eq!(skip_all(text), Ok(()), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_json() {
        for text in [
            "",
            "{",
            "[1,]",
            "[1 2]",
            "{\"a\" 1}",
            "{\"a\": 1,}",
            "{a: 1}",
            "01",
            "1.",
            "-",
            "1e",
            ".5",
            "tru",
            "nul",
            "\"unterminated",
            "\"bad \\x escape\"",
            "\"\\u12\"",
            "\"tab\tinside\"",
            "{} {}",
            "[1] x",
            "'single'",
        ] {
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_err(),
                "{text}"
            );
            assert!(skip_all(text).is_err(), "{text:?} passed");
        }
    }

    #[test]
    fn strings_are_decoded_and_borrowed_when_plain() {
        let mut r = Reader::new(r#""plain""#);
        assert!(matches!(r.string(), Ok(Cow::Borrowed("plain"))));
        for (text, want) in [
            (r#""a\"b""#, "a\"b"),
            (r#""\u00e9t\u00e9""#, "été"),
            (r#""\ud83d\ude00!""#, "😀!"),
            (r#""lone \ud800 high""#, "lone \u{fffd} high"),
            (r#""lone \udc00 low""#, "lone \u{fffd} low"),
            (r#""\ud800\u0041""#, "\u{fffd}A"),
            (r#""line\r\nbreak""#, "line\r\nbreak"),
            // Long enough to go through the eight-byte scan and its tail.
            (
                r#""Enable failed: exit status 1 \"quoted\" and more text""#,
                "Enable failed: exit status 1 \"quoted\" and more text",
            ),
        ] {
            assert_eq!(Reader::new(text).string().as_deref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn the_special_byte_scan_finds_the_first_one_at_every_offset() {
        for len in 0..20 {
            for at in 0..=len {
                for special in [b'"', b'\\', 0x1f, 0x00] {
                    let mut b = vec![b'a'; len];
                    // Bytes just above the specials and non-ASCII must not be taken for them.
                    for (k, x) in b.iter_mut().enumerate() {
                        *x = [b'a', b'#', b']', 0x20, 0xc3, 0xff][k % 6];
                    }
                    if at < len {
                        b[at] = special;
                    }
                    assert_eq!(find_special(&b, 0), at, "len {len} at {at} {special:#x}");
                }
            }
        }
    }

    #[test]
    fn numbers_keep_their_text_and_errors_say_where() {
        let mut r = Reader::new(" -12.5e3,");
        assert_eq!(r.number(), Ok("-12.5e3"));
        let err = skip_all("{\"a\": [1, 2,]}").expect_err("trailing comma");
        assert_eq!(err.at, 12, "{err}");
    }

    /// Every byte of a real response replaced in turn by each JSON-significant byte: the reader
    /// accepts exactly what serde_json accepts.
    #[test]
    fn agrees_with_serde_json_on_every_single_byte_corruption() {
        let original = include_str!(
            "../../tests/fixtures/arm-examples/seed-2017-03-30-list-instance-views.json"
        );
        let mut tried = 0;
        for at in 0..original.len() {
            for with in b"\"\\{}[],:0-e.+ tu\x01/" {
                let mut bytes = original.as_bytes().to_vec();
                bytes[at] = *with;
                let Ok(text) = std::str::from_utf8(&bytes) else {
                    continue;
                };
                let theirs = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
                assert_eq!(
                    skip_all(text).is_ok(),
                    theirs,
                    "byte {at} as {:?}",
                    *with as char
                );
                tried += 1;
            }
        }
        assert!(tried > 40_000, "{tried}");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            skip_all(&deep).map_err(|e| e.what),
            Err("nested too deeply")
        );
        let fine = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(skip_all(&fine), Ok(()));
    }
}
