//! `gen_chatdb`: a deterministic generator of chat-app-shaped SQLite databases
//! (modelled loosely on Open WebUI's schema) for migsnap's benchmarks.
//!
//! ```text
//! cargo build --release --example gen_chatdb
//! target/release/examples/gen_chatdb create --size 256M bench-data/chat.db --seed 42 --journal wal
//! target/release/examples/gen_chatdb mutate bench-data/chat.db --percent 1 --seed 7
//! ```
//!
//! Determinism: every random choice, every id and every timestamp comes from a
//! seeded RNG (no wall clock, no OS randomness), the fill loop checks the file
//! size at fixed points, and SQLite lays pages out deterministically for a given
//! sequence of statements. So the same binary with the same `--seed`, `--size`
//! and `--journal` writes a byte-identical file, and `mutate` with the same seed
//! on the same input makes the same changes.
//!
//! Text is drawn from a Zipf-distributed word vocabulary (real English words plus
//! pronounceable made-up ones) and shaped into sentences, markdown lists and code
//! blocks, so it compresses like real chat text (the whole DB is ~3-4x with
//! `zstd -3`) rather than like random bytes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, RngCore, SeedableRng};
use rusqlite::{Connection, params};
use serde_json::{Value, json};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[derive(Parser)]
#[command(
    name = "gen_chatdb",
    about = "Deterministic generator of chat-app-shaped SQLite databases for migsnap benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a new database of (at least) the given size. An existing OUT is replaced.
    Create {
        /// Target file size: bytes, or with a K/M/G suffix (binary: 1M = 1048576), e.g. 256M, 1G.
        #[arg(long, value_parser = parse_size)]
        size: u64,
        /// Output database path. Written as OUT.partial, then renamed, so an
        /// interrupted run never leaves a half-filled OUT behind.
        out: PathBuf,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Journal mode the finished database is left in.
        #[arg(long, value_enum, default_value_t = Journal::Wal)]
        journal: Journal,
    },
    /// Update PERCENT% of the chat and message rows (chosen with the seed) and
    /// insert PERCENT/10 % new rows, in one transaction.
    Mutate {
        db: PathBuf,
        #[arg(long, default_value_t = 1.0)]
        percent: f64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Journal {
    Wal,
    Delete,
}

fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M') => (&s[..s.len() - 1], 1u64 << 20),
        Some('G') => (&s[..s.len() - 1], 1u64 << 30),
        _ => (s, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad size {s:?}: want e.g. 65536, 64M, 256M, 1G"))?;
    n.checked_mul(mult)
        .filter(|&b| b >= 64 << 10)
        .ok_or_else(|| format!("size {s:?} out of range (min 64K)"))
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Create {
            size,
            out,
            seed,
            journal,
        } => create(size, &out, seed, journal),
        Cmd::Mutate { db, percent, seed } => mutate(&db, percent, seed),
    }
}

// ---------------------------------------------------------------------------
// Vocabulary and text
// ---------------------------------------------------------------------------

const COMMON: &str = "the of and to a in is it you that he was for on are with as I his they be at one have this \
from or had by not word but what some we can out other were all there when up use your how said an each she which \
do their time if will way about many then them write would like so these her long make thing see him two has look \
more day could go come did number sound no most people my over know water than call first who may down side been now \
find any new work part take get place made live where after back little only round man year came show every good me \
give our under name very through just form sentence great think say help low line differ turn cause much mean before \
move right boy old too same tell does set three want air well also play small end put home read hand port large spell \
add even land here must big high such follow act why ask men change went light kind off need house picture try us \
again animal point mother world near build self earth father head stand own page should country found answer school \
grow study still learn plant cover food sun four between state keep eye never last let thought city tree cross farm \
hard start might story saw far sea draw left late run while press close night real life few north open seem together \
next white children begin got walk example ease paper group always music those both mark often letter until mile river \
car feet care second book carry took science eat room friend began idea fish mountain stop once base hear horse cut \
sure watch color face wood main enough plain girl usual young ready above ever red list though feel talk bird soon body \
dog family direct pose leave song measure door product black short numeral class wind question happen complete ship \
area half rock order fire south problem piece told knew pass since top whole king space heard best hour better true \
during hundred five remember step early hold west ground interest reach fast verb sing listen six table travel less \
morning ten simple several vowel toward war lay against pattern slow center love person money serve appear road map \
rain rule govern pull cold notice voice unit power town fine certain fly fall lead cry dark machine note wait plan \
figure star box noun field rest correct able pound done beauty drive stood contain front teach week final gave green \
quick develop ocean warm free minute strong special mind behind clear tail produce fact street inch multiply nothing \
course stay wheel full force blue object decide surface deep moon island foot system busy test record boat common gold \
possible plane stead dry wonder laugh thousand ago ran check game shape equate miss brought heat snow tire bring yes \
distant fill east paint language among data model function value error file server request response query table index \
database migration schema column user message token context prompt output input result config setting version update \
install python rust docker container image network memory cache thread async await return string integer list array \
object class method module package library build deploy release branch commit merge test debug log trace metric";

const CODE_WORDS: &[&str] = &[
    "let", "const", "fn", "def", "return", "if", "else", "for", "in", "while", "match", "import",
    "from", "self", "await", "async", "None", "True", "False", "Ok", "Err", "Some", "result",
    "value", "data", "items", "item", "key", "config", "path", "args", "kwargs", "response",
    "request", "client", "session", "conn", "cursor", "row", "rows", "user_id", "chat_id",
    "message", "messages", "content", "model", "json", "dict", "len", "str", "int", "print",
    "logger", "error", "query", "params", "timeout", "retry", "buffer", "index", "count", "total",
    "offset", "limit",
];

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ter", "an", "ver", "sol", "ri", "tan", "pe", "dor", "el", "vis", "qua",
    "min", "ba", "ron", "ti", "sa", "len", "mor", "ex", "cal", "ne", "do", "fra", "gi", "lu",
    "pha", "zen", "ol", "ar", "in", "ul", "ko", "tri", "ste", "per", "con", "dis", "pro", "syn",
    "ment", "tion", "al", "ic", "ous", "ive", "ly", "ing",
];

const MODELS: &[(&str, &str)] = &[
    ("llama3.1:8b", "Llama 3.1 8B"),
    ("gpt-4o", "GPT-4o"),
    ("qwen2.5:14b", "Qwen 2.5 14B"),
    ("mistral:7b", "Mistral 7B"),
    ("gemma2:9b", "Gemma 2 9B"),
    ("deepseek-r1:14b", "DeepSeek R1 14B"),
];

const FIRST_NAMES: &[&str] = &[
    "Alice", "Bob", "Carla", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemal",
    "Lena", "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tariq", "Uma",
    "Viktor", "Wen", "Ximena", "Yusuf", "Zoe",
];
const LAST_NAMES: &[&str] = &[
    "Almeida", "Berg", "Chen", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ivanova",
    "Jensen", "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Petrov", "Rossi", "Schmidt",
    "Tanaka", "Usman", "Varga", "Weber",
];

/// Word vocabulary with a 64K-entry lookup table that samples ranks from a
/// Zipf distribution in O(1).
struct Vocab {
    words: Vec<String>,
    table: Vec<u32>,
}

impl Vocab {
    /// Fixed for all seeds, so every database speaks the same "language".
    fn new() -> Self {
        const ZIPF_S: f64 = 0.95;
        const SYNTHETIC: usize = 6000;
        let mut words: Vec<String> = COMMON.split_whitespace().map(str::to_owned).collect();
        let mut seen: std::collections::HashSet<String> = words.iter().cloned().collect();
        let mut rng = StdRng::seed_from_u64(0x5eed_70c4_b01a_0001);
        while words.len() < COMMON.split_whitespace().count() + SYNTHETIC {
            let n = rng.random_range(2..=4);
            let w: String = (0..n)
                .map(|_| *SYLLABLES.choose(&mut rng).unwrap())
                .collect();
            if seen.insert(w.clone()) {
                words.push(w);
            }
        }
        let weights: Vec<f64> = (0..words.len())
            .map(|r| 1.0 / ((r + 1) as f64).powf(ZIPF_S))
            .collect();
        let total: f64 = weights.iter().sum();
        let mut table = Vec::with_capacity(1 << 16);
        let mut cdf = 0.0;
        let mut rank = 0usize;
        for i in 0..(1u32 << 16) {
            let u = (f64::from(i) + 0.5) / 65536.0;
            while rank + 1 < words.len() && cdf + weights[rank] / total < u {
                cdf += weights[rank] / total;
                rank += 1;
            }
            table.push(rank as u32);
        }
        Vocab { words, table }
    }

    fn word<'a>(&'a self, rng: &mut StdRng) -> &'a str {
        let r = rng.next_u32();
        let mut idx = self.table[(r >> 16) as usize] as usize;
        // Spread the low-probability tail over the whole vocabulary: ranks the
        // table can't resolve are replaced by a uniform pick among rare words.
        if idx + 1 >= self.words.len() / 2 && (r & 0xff) < 96 {
            idx = self.words.len() / 2 + (r as usize >> 8) % (self.words.len() / 2);
        }
        &self.words[idx]
    }
}

/// Seeded generator of ids, timestamps and text.
struct Gen<'v> {
    rng: StdRng,
    vocab: &'v Vocab,
}

fn capitalize_into(out: &mut String, w: &str) {
    let mut cs = w.chars();
    if let Some(c) = cs.next() {
        out.push(c.to_ascii_uppercase());
        out.push_str(cs.as_str());
    }
}

impl<'v> Gen<'v> {
    fn new(seed: u64, domain: u64, vocab: &'v Vocab) -> Self {
        Gen {
            rng: StdRng::seed_from_u64(seed ^ domain.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            vocab,
        }
    }

    fn uuid(&mut self) -> String {
        let mut b = [0u8; 16];
        self.rng.fill_bytes(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let mut s = String::with_capacity(36);
        for (i, x) in b.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                s.push('-');
            }
            write!(s, "{x:02x}").unwrap();
        }
        s
    }

    fn sentence(&mut self, out: &mut String, question: bool) {
        let n = self.rng.random_range(4..=22);
        for i in 0..n {
            let w = self.vocab.word(&mut self.rng);
            if i == 0 {
                capitalize_into(out, w);
            } else {
                out.push(' ');
                if self.rng.random_ratio(1, 40) {
                    out.push('`');
                    out.push_str(w);
                    out.push('`');
                } else {
                    out.push_str(w);
                }
                if i + 1 < n && self.rng.random_ratio(1, 12) {
                    out.push(',');
                }
            }
        }
        out.push(if question {
            '?'
        } else if self.rng.random_ratio(1, 30) {
            '!'
        } else {
            '.'
        });
    }

    fn paragraph(&mut self, out: &mut String, question: bool) {
        let n = self.rng.random_range(1..=5);
        for i in 0..n {
            if i > 0 {
                out.push(' ');
            }
            self.sentence(out, question && i + 1 == n);
        }
    }

    fn code_block(&mut self, out: &mut String) {
        let lang = *["python", "rust", "bash", "sql", "javascript"]
            .choose(&mut self.rng)
            .unwrap();
        out.push_str("```");
        out.push_str(lang);
        out.push('\n');
        let lines = self.rng.random_range(3..=14);
        let mut indent = 0usize;
        for _ in 0..lines {
            for _ in 0..indent {
                out.push_str("    ");
            }
            let n = self.rng.random_range(2..=7);
            for j in 0..n {
                if j > 0 {
                    out.push_str(
                        [" ", " = ", "(", ", ", ".", " "]
                            .choose(&mut self.rng)
                            .unwrap(),
                    );
                }
                out.push_str(CODE_WORDS.choose(&mut self.rng).unwrap());
            }
            if self.rng.random_ratio(1, 4) && indent < 3 {
                out.push(':');
                indent += 1;
            } else if indent > 0 && self.rng.random_ratio(1, 3) {
                out.push(')');
                indent -= 1;
            }
            out.push('\n');
        }
        out.push_str("```");
    }

    /// Markdown-ish text of about `target` bytes (exactly `target` when `exact`).
    fn text(&mut self, target: usize, assistant: bool, exact: bool) -> String {
        let mut out = String::with_capacity(target + 256);
        while out.len() < target {
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            let pick = if assistant {
                self.rng.random_range(0..10)
            } else {
                0
            };
            match pick {
                0..=5 => self.paragraph(&mut out, !assistant),
                6 | 7 => {
                    let items = self.rng.random_range(2..=6);
                    for i in 0..items {
                        if i > 0 {
                            out.push('\n');
                        }
                        if self.rng.random_bool(0.5) {
                            write!(out, "{}. **", i + 1).unwrap();
                        } else {
                            out.push_str("- **");
                        }
                        let w = self.vocab.word(&mut self.rng);
                        capitalize_into(&mut out, w);
                        out.push_str("**: ");
                        self.sentence(&mut out, false);
                    }
                }
                8 => {
                    out.push_str(["## ", "### ", "**"].choose(&mut self.rng).unwrap());
                    for k in 0..self.rng.random_range(2..=5) {
                        if k > 0 {
                            out.push(' ');
                        }
                        let w = self.vocab.word(&mut self.rng);
                        capitalize_into(&mut out, w);
                    }
                    out.push('\n');
                    self.paragraph(&mut out, false);
                }
                _ => self.code_block(&mut out),
            }
        }
        if exact && out.len() > target {
            // Cut at a word boundary at most 20 bytes before `target` (the text
            // is ASCII, so every byte index is a char boundary).
            out.truncate(target - 1);
            if let Some(sp) = out.rfind([' ', '\n']).filter(|&sp| sp + 20 >= target) {
                out.truncate(sp);
            }
            out.truncate(out.trim_end_matches([' ', '\n', ',', '*', '`', '#']).len());
            out.push('.');
        }
        out
    }

    fn title(&mut self) -> String {
        let mut t = String::new();
        for k in 0..self.rng.random_range(2..=6) {
            if k > 0 {
                t.push(' ');
            }
            let w = self.vocab.word(&mut self.rng);
            capitalize_into(&mut t, w);
        }
        t
    }

    /// Log-uniform in [lo, hi].
    fn log_uniform(&mut self, lo: f64, hi: f64) -> usize {
        (lo * (hi / lo).powf(self.rng.random::<f64>())) as usize
    }
}

// ---------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------

const SCHEMA: &str = r#"
CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
CREATE TABLE "user" (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    profile_image_url TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_active_at INTEGER NOT NULL,
    settings JSON,
    info JSON
);
CREATE TABLE chat (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES "user"(id),
    title TEXT NOT NULL,
    chat JSON NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    share_id TEXT UNIQUE,
    archived INTEGER NOT NULL DEFAULT 0,
    pinned INTEGER NOT NULL DEFAULT 0,
    meta JSON NOT NULL DEFAULT '{}',
    folder_id TEXT
);
CREATE TABLE message (
    id INTEGER PRIMARY KEY,
    chat_id TEXT NOT NULL REFERENCES chat(id),
    user_id TEXT NOT NULL REFERENCES "user"(id),
    content TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX chat_user_id_idx ON chat(user_id);
CREATE INDEX chat_updated_at_idx ON chat(updated_at);
CREATE INDEX message_chat_id_idx ON message(chat_id);
CREATE INDEX message_created_at_idx ON message(created_at);
INSERT INTO alembic_version (version_num) VALUES ('3af16a1c9fb6');
"#;

const INSERT_USER: &str = r#"INSERT INTO "user" (id, name, email, role, profile_image_url, created_at, updated_at, last_active_at, settings, info)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9)"#;
const INSERT_CHAT: &str = "INSERT INTO chat (id, user_id, title, chat, created_at, updated_at, share_id, archived, pinned, meta, folder_id)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const INSERT_MESSAGE: &str = "INSERT INTO message (chat_id, user_id, content, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)";

#[derive(Default, Debug)]
struct Counts {
    users: u64,
    chats: u64,
    messages: u64,
}

impl Counts {
    fn rows(&self) -> u64 {
        self.users + self.chats + self.messages
    }
}

/// One message inside a chat's JSON body.
// One argument per column of a message row reads better here than a struct
// built only to be taken apart again.
#[allow(clippy::too_many_arguments)]
fn chat_message(
    g: &mut Gen,
    id: &str,
    parent: Option<&str>,
    child: Option<&str>,
    role: &str,
    content: String,
    ts: i64,
    model: (&str, &str),
) -> Value {
    let mut m = json!({
        "id": id,
        "parentId": parent,
        "childrenIds": child.map(|c| vec![c]).unwrap_or_default(),
        "role": role,
        "content": content,
        "timestamp": ts,
    });
    let o = m.as_object_mut().unwrap();
    if role == "user" {
        o.insert("models".into(), json!([model.0]));
    } else {
        let prompt = g.rng.random_range(20..4000);
        let completion = g.rng.random_range(20..1500);
        o.insert("model".into(), json!(model.0));
        o.insert("modelName".into(), json!(model.1));
        o.insert("modelIdx".into(), json!(0));
        o.insert("done".into(), json!(true));
        o.insert(
            "usage".into(),
            json!({
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "response_token/s": g.rng.random_range(8..120),
                "total_duration": g.rng.random_range(100_000_000i64..90_000_000_000),
            }),
        );
    }
    m
}

const MAX_BODY: usize = 20 * 1024;

/// Build an Open WebUI style chat body (`history.messages` map plus a flat
/// `messages` list, both carrying the content) of roughly `target` bytes.
/// Returns the body and the timestamp of its last message.
fn chat_body(g: &mut Gen, chat_id: &str, title: &str, target: usize, t0: i64) -> (String, i64) {
    let model = *MODELS.choose(&mut g.rng).unwrap();
    let mut msgs: Vec<(String, &str, String, i64)> = Vec::new(); // id, role, content, ts
    let mut ts = t0;
    // Each message costs ~2x its content (map + list) plus ~700 bytes of JSON.
    let mut budget = target as i64 - 400;
    loop {
        let ulen = g.log_uniform(20.0, 600.0);
        let alen = g.log_uniform(80.0, 4000.0) as i64;
        let alen = alen.min((budget - 2 * ulen as i64 - 1100) / 2).max(40) as usize;
        let u = g.text(ulen, false, true);
        ts += g.rng.random_range(5..600);
        msgs.push((g.uuid(), "user", u, ts));
        let a = g.text(alen, true, true);
        ts += g.rng.random_range(2..90);
        msgs.push((g.uuid(), "assistant", a, ts));
        budget -= 2 * (ulen + alen) as i64 + 1100;
        if budget < 1500 {
            break;
        }
    }
    loop {
        let (body, last) = build_body(g, chat_id, title, model, &msgs, t0);
        if body.len() <= MAX_BODY || msgs.len() <= 2 {
            return (body, last);
        }
        msgs.truncate(msgs.len() - 2);
    }
}

fn build_body(
    g: &mut Gen,
    chat_id: &str,
    title: &str,
    model: (&str, &str),
    msgs: &[(String, &str, String, i64)],
    t0: i64,
) -> (String, i64) {
    let mut map = serde_json::Map::new();
    let mut list = Vec::with_capacity(msgs.len());
    for (i, (id, role, content, ts)) in msgs.iter().enumerate() {
        let parent = i.checked_sub(1).map(|p| msgs[p].0.as_str());
        let child = msgs.get(i + 1).map(|c| c.0.as_str());
        let m = chat_message(g, id, parent, child, role, content.clone(), *ts, model);
        map.insert(id.clone(), m.clone());
        list.push(m);
    }
    let last = msgs.last().map(|m| m.3).unwrap_or(t0);
    let body = json!({
        "id": chat_id,
        "title": title,
        "models": [model.0],
        "params": {},
        "history": {"messages": map, "currentId": msgs.last().map(|m| m.0.clone())},
        "messages": list,
        "tags": [],
        "timestamp": t0 * 1000,
        "files": [],
    });
    (serde_json::to_string(&body).unwrap(), last)
}

/// Append one user/assistant exchange (or regenerate the last answer) in an
/// existing chat body. Keeps the document's structure and key order.
fn extend_body(g: &mut Gen, body: &str, now: i64) -> Result<String> {
    let v: Value = serde_json::from_str(body)?;
    let model_id = v["models"][0].as_str().unwrap_or(MODELS[0].0).to_owned();
    let model = *MODELS
        .iter()
        .find(|m| m.0 == model_id)
        .unwrap_or(&MODELS[0]);
    let list = v["messages"].as_array().cloned().unwrap_or_default();
    let mut msgs: Vec<(String, &str, String, i64)> = list
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap_or_default().to_owned(),
                if m["role"] == "user" {
                    "user"
                } else {
                    "assistant"
                },
                m["content"].as_str().unwrap_or_default().to_owned(),
                m["timestamp"].as_i64().unwrap_or(now),
            )
        })
        .collect();
    if g.rng.random_ratio(1, 4) && msgs.last().is_some_and(|m| m.1 == "assistant") {
        // "Regenerate": replace the last answer with a new one.
        let last = msgs.last_mut().unwrap();
        let alen = g.log_uniform(80.0, 3000.0);
        last.2 = g.text(alen, true, true);
        last.3 = now;
    } else {
        let ulen = g.log_uniform(20.0, 600.0);
        let alen = g.log_uniform(80.0, 3000.0);
        let u = g.text(ulen, false, true);
        msgs.push((g.uuid(), "user", u, now));
        let a = g.text(alen, true, true);
        msgs.push((g.uuid(), "assistant", a, now + g.rng.random_range(2..90)));
    }
    let id = v["id"].as_str().unwrap_or_default().to_owned();
    let title = v["title"].as_str().unwrap_or_default().to_owned();
    let t0 = v["timestamp"].as_i64().unwrap_or(now * 1000) / 1000;
    Ok(build_body(g, &id, &title, model, &msgs, t0).0)
}

/// Inserts users, chats and messages. Holds the clock of the synthetic world.
struct Writer<'c, 'v> {
    conn: &'c Connection,
    g: Gen<'v>,
    users: Vec<String>,
    now: i64,
    counts: Counts,
}

impl Writer<'_, '_> {
    fn add_user(&mut self) -> Result<()> {
        let g = &mut self.g;
        let id = g.uuid();
        let first = *FIRST_NAMES.choose(&mut g.rng).unwrap();
        let last = *LAST_NAMES.choose(&mut g.rng).unwrap();
        let n = self.users.len();
        let name = format!("{first} {last}");
        let email = format!(
            "{}.{}{}@example.org",
            first.to_lowercase(),
            last.to_lowercase(),
            n
        );
        let role = if n == 0 {
            "admin"
        } else if g.rng.random_ratio(1, 20) {
            "pending"
        } else {
            "user"
        };
        let model = MODELS.choose(&mut g.rng).unwrap().0;
        let system_len = g.rng.random_range(0..300);
        let settings = json!({
            "ui": {
                "theme": *["dark", "light", "system", "oled-dark"].choose(&mut g.rng).unwrap(),
                "language": *["en-US", "de-DE", "fr-FR", "es-ES", "ja-JP"].choose(&mut g.rng).unwrap(),
                "models": [model],
                "notificationEnabled": g.rng.random_bool(0.3),
                "chatBubble": g.rng.random_bool(0.7),
                "widescreenMode": g.rng.random_bool(0.2),
                "params": {"temperature": g.rng.random_range(0..=10) * 10, "max_tokens": g.rng.random_range(1..=16) * 256},
                "system": g.text(system_len, false, true),
            }
        });
        let info = json!({"location": *["Berlin", "Lisbon", "Osaka", "Toronto", "Nairobi"].choose(&mut g.rng).unwrap()});
        self.conn.prepare_cached(INSERT_USER)?.execute(params![
            id,
            name,
            email,
            role,
            format!("/user.png?u={n}"),
            self.now,
            self.now + g.rng.random_range(0..86_400 * 30),
            settings.to_string(),
            info.to_string(),
        ])?;
        self.users.push(id);
        self.counts.users += 1;
        Ok(())
    }

    /// One chat plus its 0..=10 message rows.
    fn add_chat(&mut self) -> Result<()> {
        if self.users.is_empty() || self.g.rng.random_ratio(1, 40) {
            self.add_user()?;
        }
        self.now += self.g.rng.random_range(30..3600);
        let g = &mut self.g;
        let user = self.users.choose(&mut g.rng).unwrap().clone();
        let id = g.uuid();
        let title = g.title();
        let target = g.log_uniform(1024.0, 20480.0);
        let (body, last) = chat_body(g, &id, &title, target, self.now);
        let updated = if g.rng.random_ratio(1, 5) {
            last + g.rng.random_range(0..86_400 * 14)
        } else {
            last
        };
        let share = g.rng.random_ratio(1, 50).then(|| g.uuid());
        let archived = g.rng.random_ratio(1, 15);
        let pinned = g.rng.random_ratio(1, 30);
        let meta = if g.rng.random_ratio(1, 4) {
            json!({"tags": [g.vocab.word(&mut g.rng)]}).to_string()
        } else {
            "{}".to_owned()
        };
        self.conn.prepare_cached(INSERT_CHAT)?.execute(params![
            id,
            user,
            title,
            body,
            self.now,
            updated,
            share,
            archived,
            pinned,
            meta,
            None::<String>
        ])?;
        self.counts.chats += 1;
        let n = self.g.rng.random_range(0..=10);
        let mut t = self.now;
        for _ in 0..n {
            t += self.g.rng.random_range(5..600);
            self.add_message(&id, &user, t)?;
        }
        Ok(())
    }

    fn add_message(&mut self, chat_id: &str, user_id: &str, t: i64) -> Result<()> {
        // Cutting at a word boundary takes off at most 20 bytes: 50..=2000 chars.
        let len = self.g.rng.random_range(70..=2000);
        let assistant = self.g.rng.random_bool(0.5);
        let content = self.g.text(len, assistant, true);
        self.conn
            .prepare_cached(INSERT_MESSAGE)?
            .execute(params![chat_id, user_id, content, t])?;
        self.counts.messages += 1;
        Ok(())
    }
}

fn base_time(seed: u64) -> i64 {
    // 2024-01-01T00:00:00Z plus up to a year, derived from the seed.
    let mut r = StdRng::seed_from_u64(seed ^ 0x7131_e000);
    1_704_067_200 + r.random_range(0..365 * 86_400)
}

fn file_bytes(conn: &Connection) -> Result<u64> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok((pages * size) as u64)
}

fn remove_db_files(p: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(s));
    }
}

fn create(size: u64, out: &Path, seed: u64, journal: Journal) -> Result<()> {
    let start = Instant::now();
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    remove_db_files(&partial);

    let vocab = Vocab::new();
    let conn = Connection::open(&partial)?;
    // Fast fill: no journal, no fsync, big page cache. Restored below.
    conn.execute_batch(
        "PRAGMA page_size = 4096;
         PRAGMA journal_mode = OFF;
         PRAGMA synchronous = OFF;
         PRAGMA cache_size = -131072;
         PRAGMA locking_mode = EXCLUSIVE;",
    )?;
    conn.execute_batch(SCHEMA)?;
    let mut w = Writer {
        conn: &conn,
        g: Gen::new(seed, 1, &vocab),
        users: Vec::new(),
        now: base_time(seed),
        counts: Counts::default(),
    };
    for _ in 0..8 {
        w.add_user()?;
    }
    conn.execute_batch("BEGIN")?;
    let mut in_tx = 0u64;
    loop {
        w.add_chat()?;
        in_tx += 1;
        if w.counts.chats.is_multiple_of(8) && file_bytes(&conn)? >= size {
            break;
        }
        if in_tx >= 20_000 {
            conn.execute_batch("COMMIT; BEGIN")?;
            in_tx = 0;
        }
    }
    conn.execute_batch("COMMIT")?;
    let final_mode = match journal {
        Journal::Wal => "WAL",
        Journal::Delete => "DELETE",
    };
    conn.execute_batch(&format!(
        "PRAGMA locking_mode = NORMAL;
         PRAGMA synchronous = FULL;
         PRAGMA cache_size = -2000;
         PRAGMA journal_mode = {final_mode};"
    ))?;
    let bytes = file_bytes(&conn)?;
    let c = std::mem::take(&mut w.counts);
    drop(w);
    conn.close().map_err(|(_, e)| e)?;
    remove_db_files(out);
    std::fs::rename(&partial, out)?;
    println!(
        "created {}: {} bytes ({:.1} MiB), journal={}, seed={seed}, rows={} (user={}, chat={}, message={}) in {:.1}s",
        out.display(),
        bytes,
        bytes as f64 / (1 << 20) as f64,
        final_mode.to_lowercase(),
        c.rows(),
        c.users,
        c.chats,
        c.messages,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn mutate(db: &Path, percent: f64, seed: u64) -> Result<()> {
    if !db.exists() {
        return Err(format!("{} does not exist", db.display()).into());
    }
    if !(percent > 0.0 && percent <= 100.0) {
        return Err("--percent must be in (0, 100]".into());
    }
    let start = Instant::now();
    let vocab = Vocab::new();
    let conn = Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let before = file_bytes(&conn)?;

    let chat_rowids: Vec<i64> = conn
        .prepare("SELECT rowid FROM chat ORDER BY rowid")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let msg_ids: Vec<i64> = conn
        .prepare("SELECT id FROM message ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let users: Vec<String> = conn
        .prepare(r#"SELECT id FROM "user" ORDER BY rowid"#)?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let max_ts: i64 = conn.query_row(
        "SELECT max(coalesce((SELECT max(updated_at) FROM chat), 0), coalesce((SELECT max(updated_at) FROM message), 0))",
        [],
        |r| r.get(0),
    )?;

    let pick = |n: usize, frac: f64| -> usize {
        if n == 0 {
            0
        } else {
            ((n as f64 * frac).round() as usize).clamp(1, n)
        }
    };
    let n_chat_upd = pick(chat_rowids.len(), percent / 100.0);
    let n_msg_upd = pick(msg_ids.len(), percent / 100.0);
    let n_chat_new = pick(chat_rowids.len().max(1), percent / 1000.0);
    let n_msg_new = pick(msg_ids.len().max(1), percent / 1000.0);

    let mut w = Writer {
        conn: &conn,
        g: Gen::new(seed, 2, &vocab),
        users,
        now: max_ts,
        counts: Counts::default(),
    };
    w.now += w.g.rng.random_range(3600..86_400);

    let mut chat_sel: Vec<i64> =
        rand::seq::index::sample(&mut w.g.rng, chat_rowids.len(), n_chat_upd)
            .into_iter()
            .map(|i| chat_rowids[i])
            .collect();
    chat_sel.sort_unstable();
    let mut msg_sel: Vec<i64> = rand::seq::index::sample(&mut w.g.rng, msg_ids.len(), n_msg_upd)
        .into_iter()
        .map(|i| msg_ids[i])
        .collect();
    msg_sel.sort_unstable();

    conn.execute_batch("BEGIN IMMEDIATE")?;
    let mut chat_bytes_before = 0u64;
    let mut chat_bytes_after = 0u64;
    let mut touched_chats: Vec<(String, String)> = Vec::new();
    for rowid in &chat_sel {
        let (id, user, body): (String, String, String) = conn.query_row(
            "SELECT id, user_id, chat FROM chat WHERE rowid = ?1",
            [rowid],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        w.now += w.g.rng.random_range(1..120);
        let new_body = extend_body(&mut w.g, &body, w.now)?;
        chat_bytes_before += body.len() as u64;
        chat_bytes_after += new_body.len() as u64;
        conn.prepare_cached("UPDATE chat SET chat = ?1, updated_at = ?2 WHERE rowid = ?3")?
            .execute(params![new_body, w.now, rowid])?;
        touched_chats.push((id, user));
    }
    let mut msg_bytes = 0u64;
    for id in &msg_sel {
        let len = w.g.rng.random_range(70..=2000);
        let assistant = w.g.rng.random_bool(0.5);
        let content = w.g.text(len, assistant, true);
        msg_bytes += content.len() as u64;
        w.now += w.g.rng.random_range(0..5);
        conn.prepare_cached("UPDATE message SET content = ?1, updated_at = ?2 WHERE id = ?3")?
            .execute(params![content, w.now, id])?;
    }
    // New rows: fresh chats (each with its own messages) ...
    for _ in 0..n_chat_new {
        w.add_chat()?;
    }
    // ... and new messages in the chats that were continued, up to n_msg_new.
    let mut i = 0usize;
    while w.counts.messages < n_msg_new as u64 && !touched_chats.is_empty() {
        let (chat_id, user_id) = touched_chats[i % touched_chats.len()].clone();
        w.now += w.g.rng.random_range(1..60);
        let now = w.now;
        w.add_message(&chat_id, &user_id, now)?;
        i += 1;
    }
    conn.execute_batch("COMMIT")?;
    let after = file_bytes(&conn)?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let counts = std::mem::take(&mut w.counts);
    drop(w);
    conn.close().map_err(|(_, e)| e)?;
    println!(
        "mutated {} (seed={seed}, percent={percent}): updated chat={} ({} -> {} JSON bytes), updated message={} ({} bytes of new content); \
         inserted user={}, chat={}, message={}; file {} -> {} bytes, freelist {} pages; {:.1}s",
        db.display(),
        chat_sel.len(),
        chat_bytes_before,
        chat_bytes_after,
        msg_sel.len(),
        msg_bytes,
        counts.users,
        counts.chats,
        counts.messages,
        before,
        after,
        free,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert!(parse_size("12").is_err());
        assert!(parse_size("x").is_err());
    }
}
