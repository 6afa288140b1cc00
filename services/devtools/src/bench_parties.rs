//! `tiaojie bench parties`: fills the party registry with generated residents of one
//! community (names, mobile numbers, 居民身份证 numbers) and measures the registry's search
//! by name prefix, phone and ID number, through the blind index it uses, beside the
//! alternative of decrypting the community's parties in memory.

use std::time::Instant;

use anyhow::Context;
use tiaojie_events::metadata::Role;
use tiaojie_events::CommunityId;

use crate::app::App;
use crate::auth::Actor;
use crate::commands::RequestMeta;
use crate::parties::{self, PartyData, PartyKind, SearchFor};
use crate::party_checks::check_digit;

const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗",
];
const GIVEN: [&str; 24] = [
    "桂兰", "建华", "秀英", "志强", "玉梅", "海燕", "国庆", "丽娟", "文斌", "淑珍", "红霞", "建国",
    "春花", "立新", "凤英", "永红", "晓东", "秀兰", "德明", "金凤", "俊", "敏", "静", "磊",
];

fn name(i: usize) -> String {
    format!(
        "{}{}",
        SURNAMES[i % SURNAMES.len()],
        GIVEN[(i / SURNAMES.len()) % GIVEN.len()]
    )
}

fn phone(i: usize) -> String {
    format!("139{:08}", 10_000_000 + i)
}

fn id_number(i: usize) -> String {
    let first17 = format!(
        "640402{}{:02}{:02}{:03}",
        1940 + i % 60,
        1 + i % 12,
        1 + i % 28,
        i % 1000
    );
    format!("{first17}{}", check_digit(&first17).unwrap_or('0'))
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    (q(0.5), q(0.95))
}

pub async fn parties(app: &App, count: usize, rounds: usize) -> anyhow::Result<()> {
    let groups = crate::bench::form_groups(app).await?;
    let (community, (group, member)) = groups
        .iter()
        .min_by_key(|(c, _)| c.as_str())
        .context("no mediation group was formed")?;
    let community_id = CommunityId::parse(community)?;
    let actor = |id: String| Actor {
        id,
        name: "bench".into(),
        role: Role::Member,
        organisation: "bench".into(),
        group: Some(*group),
        account: None,
        member: Some(*member),
    };
    let registrar = actor("bench".into());
    let meta = RequestMeta::new_request();
    let started = Instant::now();
    for i in 0..count {
        let data = PartyData {
            name: name(i),
            phone: Some(phone(i)),
            id_number: Some(id_number(i)),
            building: Some(format!("{}号楼", i % 12 + 1)),
            ..Default::default()
        };
        parties::register(
            app,
            &registrar,
            &meta,
            PartyKind::Resident,
            &community_id,
            &data,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", e.title, e.detail_zh))?;
    }
    let filled = started.elapsed();
    println!(
        "party registry: {count} parties registered in one community in {:.1} s ({:.2} ms each: validate, seal, terms)",
        filled.as_secs_f64(),
        ms(filled) / count as f64
    );
    println!(
        "{:<34} {:>8} {:>10} {:>10}",
        "search", "found", "p50 ms", "p95 ms"
    );
    let probe = count / 2;
    let full = name(probe);
    let wanted: [(&str, String, u8); 5] = [
        (
            "name prefix, 1 character",
            full.chars().take(1).collect(),
            0,
        ),
        (
            "name prefix, 2 characters",
            full.chars().take(2).collect(),
            0,
        ),
        ("full name", full.clone(), 0),
        ("phone", phone(probe), 1),
        ("ID number", id_number(probe), 2),
    ];
    for (what, value, by) in wanted {
        let mut times = Vec::with_capacity(rounds);
        let mut found = 0;
        for r in 0..rounds {
            // Searches by phone or ID number are limited per account: a fresh one each time.
            let who = actor(format!("bench-{by}-{r}"));
            let q = SearchFor {
                name: (by == 0).then_some(value.as_str()),
                phone: (by == 1).then_some(value.as_str()),
                id_number: (by == 2).then_some(value.as_str()),
                repeat_obstructor: false,
                reason: None,
            };
            let t = Instant::now();
            found = parties::search(app, &who, &meta, q)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.title))?
                .len();
            times.push(ms(t.elapsed()));
        }
        let (p50, p95) = percentiles(times);
        println!("{what:<34} {found:>8} {p50:>10.2} {p95:>10.2}");
    }
    let prefix: String = full.chars().take(1).collect();
    let t = Instant::now();
    let matched = parties::scan_by_name_prefix(app, community, &prefix)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.title))?;
    println!(
        "{:<34} {matched:>8} {:>10.2} {:>10}",
        "(alternative) decrypt all, 1 char",
        ms(t.elapsed()),
        "-"
    );
    println!(
        "search answers at most {} parties (newest first), each decrypted and logged as seen",
        parties::SEARCH_LIMIT
    );
    Ok(())
}
