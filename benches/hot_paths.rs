//! Criterion benchmarks of the per-page hot paths of a snapshot and a
//! restore: hashing a page (alone, and a batch in BLAKE3's lanes),
//! packing and compressing 32 pages, planning a delta listing, and
//! unpacking. Run: `cargo bench --bench hot_paths`.
//! The whole-command comparison with sqlite3, restic and zstd is
//! `benches/compare.sh`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use migsnap_store::compress::{Compressor, Dictionary, PACKED_LEVEL, train_dictionary};
use migsnap_store::image::{ResolvedImage, plan_listing};

use migsnap_store::pack::PACK_OBJECTS;
use migsnap_store::{BlockChange, HashedBlob, Image, Listing, ObjectId, PreparedPack};

const PAGE: usize = 4096;

/// Text-like pages from a small vocabulary, so they compress like chat data.
fn pages(count: usize) -> Vec<Vec<u8>> {
    let words = [
        "the",
        "user",
        "message",
        "content",
        "role",
        "assistant",
        "model",
        "chat",
        "{\"id\":",
        "\"timestamp\":",
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..count)
        .map(|_| {
            let mut page = Vec::with_capacity(PAGE);
            while page.len() < PAGE {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                page.extend_from_slice(words[(state % words.len() as u64) as usize].as_bytes());
                page.push(b' ');
            }
            page.truncate(PAGE);
            page
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let pages = pages(1024);
    let dictionary = Dictionary::new(train_dictionary(&pages).expect("enough samples to train"));

    let mut group = c.benchmark_group("page");
    group.throughput(Throughput::Bytes(PAGE as u64));
    group.bench_function("blob_id", |b| {
        b.iter(|| migsnap_store::codec::blob_id(&pages[7]))
    });
    group.finish();

    // A batch of pages hashed one by one against side by side in BLAKE3's
    // lanes (`codec::blob_ids`): the sizes hashed in lanes, and 64 KiB,
    // which is hashed alone either way.
    let text = pages.concat();
    for size in [1024, PAGE, 8192, 65536] {
        let batch: Vec<&[u8]> = text.chunks_exact(size).take(64).collect();
        let mut group = c.benchmark_group(format!("ids of 64 pages of {size} bytes"));
        group.throughput(Throughput::Bytes((64 * size) as u64));
        group.bench_function("one by one", |b| {
            b.iter(|| {
                batch
                    .iter()
                    .map(|page| migsnap_store::codec::blob_id(page))
                    .collect::<Vec<ObjectId>>()
            })
        });
        group.bench_function("side by side", |b| {
            b.iter(|| {
                let mut ids = Vec::with_capacity(batch.len());
                migsnap_store::codec::blob_ids(batch.iter().copied(), &mut ids);
                ids
            })
        });
        group.finish();
    }

    let mut group = c.benchmark_group("pack");
    group.throughput(Throughput::Bytes((PAGE * PACK_OBJECTS) as u64));
    let run: Vec<HashedBlob> = pages[..PACK_OBJECTS]
        .iter()
        .map(|page| HashedBlob::new(page))
        .collect();
    let mut plain = Compressor::new(PACKED_LEVEL, None).expect("valid level");
    group.bench_function("32 pages, packed level", |b| {
        b.iter(|| PreparedPack::blobs(run.iter().copied(), &mut plain))
    });
    let mut primed = Compressor::new(PACKED_LEVEL, Some(&dictionary)).expect("valid dictionary");
    group.bench_function("32 pages, packed level + dictionary", |b| {
        b.iter(|| PreparedPack::blobs(run.iter().copied(), &mut primed))
    });
    group.finish();

    // A 1 GiB database: 262144 pages, 1% of them changed.
    let blocks: Vec<ObjectId> = (0..262_144u32)
        .map(|i| ObjectId::hash(&i.to_le_bytes()))
        .collect();
    let parent = ResolvedImage {
        id: ObjectId::hash(b"parent"),
        image: Image {
            block_size: PAGE as u32,
            block_count: blocks.len() as u32,
            digest: [0; 32],
            listing: Listing::Full(Vec::new()),
        },
        blocks: blocks.clone(),
        chain: Vec::new(),
    };
    let changes: Vec<BlockChange> = (0..blocks.len())
        .step_by(100)
        .map(|index| BlockChange {
            index: index as u32,
            block: ObjectId::hash(&(index as u64).to_be_bytes()),
        })
        .collect();
    let count = blocks.len() as u32;
    let dir = tempfile::tempdir().unwrap();
    c.bench_function("plan_listing 1 GiB, 1% changed", |b| {
        b.iter(|| {
            plan_listing(
                parent.clone(),
                PAGE as u32,
                count,
                changes.clone(),
                dir.path(),
            )
            .unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
