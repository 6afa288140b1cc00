//! The checks of a party's registration form: phone numbers (mobile and landline), the
//! 居民身份证 number with its check digit (GB 11643), other ID documents, the 56 ethnic
//! groups (GB 3304), and dates of birth. Each check answers the normalised value, or the
//! sentence a mediator reads next to the field.

use serde::{Deserialize, Serialize};
use time::{Date, Month};
use utoipa::ToSchema;

/// 性别
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    /// 男
    Male,
    /// 女
    Female,
}

impl Gender {
    pub fn label_zh(&self) -> &'static str {
        match self {
            Gender::Male => "男",
            Gender::Female => "女",
        }
    }
    pub const ALL: [Gender; 2] = [Gender::Male, Gender::Female];
    pub fn code(&self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
        }
    }
}

/// 证件类型
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdType {
    /// 居民身份证
    ResidentId,
    /// 护照
    Passport,
    /// 港澳居民来往内地通行证
    HkMacaoPermit,
    /// 台湾居民来往大陆通行证
    TaiwanPermit,
    /// 外国人永久居留身份证
    ForeignPermanentResidence,
    /// 统一社会信用代码 (an organisation's)
    CreditCode,
    /// 其他证件
    Other,
}

impl IdType {
    pub const ALL: [IdType; 7] = [
        IdType::ResidentId,
        IdType::Passport,
        IdType::HkMacaoPermit,
        IdType::TaiwanPermit,
        IdType::ForeignPermanentResidence,
        IdType::CreditCode,
        IdType::Other,
    ];
    pub fn label_zh(&self) -> &'static str {
        match self {
            IdType::ResidentId => "居民身份证",
            IdType::Passport => "护照",
            IdType::HkMacaoPermit => "港澳居民来往内地通行证",
            IdType::TaiwanPermit => "台湾居民来往大陆通行证",
            IdType::ForeignPermanentResidence => "外国人永久居留身份证",
            IdType::CreditCode => "统一社会信用代码",
            IdType::Other => "其他证件",
        }
    }
    pub fn code(&self) -> &'static str {
        match self {
            IdType::ResidentId => "resident_id",
            IdType::Passport => "passport",
            IdType::HkMacaoPermit => "hk_macao_permit",
            IdType::TaiwanPermit => "taiwan_permit",
            IdType::ForeignPermanentResidence => "foreign_permanent_residence",
            IdType::CreditCode => "credit_code",
            IdType::Other => "other",
        }
    }
}

/// The 56 ethnic groups of China, in the order of GB 3304.
pub const ETHNICITIES: [&str; 56] = [
    "汉族",
    "蒙古族",
    "回族",
    "藏族",
    "维吾尔族",
    "苗族",
    "彝族",
    "壮族",
    "布依族",
    "朝鲜族",
    "满族",
    "侗族",
    "瑶族",
    "白族",
    "土家族",
    "哈尼族",
    "哈萨克族",
    "傣族",
    "黎族",
    "傈僳族",
    "佤族",
    "畲族",
    "高山族",
    "拉祜族",
    "水族",
    "东乡族",
    "纳西族",
    "景颇族",
    "柯尔克孜族",
    "土族",
    "达斡尔族",
    "仫佬族",
    "羌族",
    "布朗族",
    "撒拉族",
    "毛南族",
    "仡佬族",
    "锡伯族",
    "阿昌族",
    "普米族",
    "塔吉克族",
    "怒族",
    "乌孜别克族",
    "俄罗斯族",
    "鄂温克族",
    "德昂族",
    "保安族",
    "裕固族",
    "京族",
    "塔塔尔族",
    "独龙族",
    "鄂伦春族",
    "赫哲族",
    "门巴族",
    "珞巴族",
    "基诺族",
];

/// A check's refusal: the English and the Chinese sentence.
pub type Refusal = (&'static str, &'static str);

/// The ethnic group as listed, from its name with or without 族.
pub fn ethnicity(v: &str) -> Result<&'static str, Refusal> {
    let v = v.trim();
    ETHNICITIES
        .iter()
        .find(|e| **e == v || e.strip_suffix('族') == Some(v))
        .copied()
        .ok_or((
            "not one of the 56 ethnic groups (e.g. 汉族, 回族)",
            "民族应从56个民族中选择（如：汉族、回族）",
        ))
}

const PHONE_REFUSAL: Refusal = (
    "a phone number is a mobile number of 11 digits (13912345678) or a landline with its area code (0951-5012345)",
    "电话号码格式不正确：手机号为11位（如13912345678），固定电话为区号加号码（如0951-5012345）",
);

/// A mobile number (11 digits from 13 to 19, an optional +86 before) becomes its 11
/// digits; a landline becomes `area-number` (`0951-5012345`, with `-ext` when an
/// extension is given); a number without area code (7 or 8 digits) and 400/800 service
/// numbers are kept as digits.
pub fn phone(v: &str) -> Result<String, Refusal> {
    let v = v.trim();
    if v.is_empty()
        || !v
            .chars()
            .all(|c| c.is_ascii_digit() || "+-() 转".contains(c))
    {
        return Err(PHONE_REFUSAL);
    }
    // An extension: after 转, or after a second hyphen of a landline.
    let (main, ext) = match v.split_once('转') {
        Some((m, e)) => (m.to_string(), Some(digits(e))),
        None => {
            let parts: Vec<&str> = v.split('-').collect();
            if parts.len() == 3 && parts[0].trim_start_matches('(').starts_with('0') {
                (format!("{}-{}", parts[0], parts[1]), Some(digits(parts[2])))
            } else {
                (v.to_string(), None)
            }
        }
    };
    if let Some(e) = &ext {
        if e.is_empty() || e.len() > 6 {
            return Err(PHONE_REFUSAL);
        }
    }
    let mut d = digits(&main);
    if main.trim_start().starts_with('+') {
        d = d.strip_prefix("86").ok_or(PHONE_REFUSAL)?.to_string();
    } else if d.len() == 13 && d.starts_with("861") {
        d = d[2..].to_string();
    }
    let with_ext = |s: String| match &ext {
        Some(e) => format!("{s}-{e}"),
        None => s,
    };
    let b = d.as_bytes();
    if d.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) && ext.is_none() {
        return Ok(d);
    }
    if d.len() == 10 && (d.starts_with("400") || d.starts_with("800")) && ext.is_none() {
        return Ok(d);
    }
    if d.starts_with('0') {
        // 010 and 02x are the three-digit area codes; every other one has four.
        let area = if d.starts_with("010") || d.starts_with("02") {
            3
        } else {
            4
        };
        let local = d.get(area..).unwrap_or("");
        if (7..=8).contains(&local.len()) && !local.starts_with(['0', '1']) {
            return Ok(with_ext(format!("{}-{local}", &d[..area])));
        }
        return Err(PHONE_REFUSAL);
    }
    if (7..=8).contains(&d.len()) && !d.starts_with(['0', '1']) {
        return Ok(with_ext(d));
    }
    Err(PHONE_REFUSAL)
}

fn digits(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_digit()).collect()
}

/// What a 居民身份证 number says: the date of birth and the gender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResidentId {
    pub birth: Date,
    pub gender: Gender,
}

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// The check digit (ISO 7064 MOD 11-2) of the first 17 digits.
pub fn check_digit(first17: &str) -> Option<char> {
    if first17.len() != 17 || !first17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    Some(CHECK[(sum % 11) as usize])
}

/// Checks an 18-character 居民身份证 number: the area code, the date of birth, and the
/// check digit. Answers it with a capital X, and what it says.
pub fn resident_id(v: &str, today: Date) -> Result<(String, ResidentId), Refusal> {
    let v: String = v.trim().to_uppercase();
    if v.len() == 15 && v.bytes().all(|b| b.is_ascii_digit()) {
        return Err((
            "give the 18-digit resident ID number (15-digit numbers are no longer valid)",
            "请填写18位居民身份证号码（15位旧号码已停用）",
        ));
    }
    let shape_ok = v.len() == 18
        && v[..17].bytes().all(|b| b.is_ascii_digit())
        && v[17..].chars().all(|c| c.is_ascii_digit() || c == 'X');
    if !shape_ok {
        return Err((
            "a resident ID number has 18 characters: 17 digits and a digit or X",
            "居民身份证号码应为18位：17位数字加1位数字或X",
        ));
    }
    if !(b'1'..=b'8').contains(&v.as_bytes()[0]) {
        return Err((
            "the resident ID number's area code is not valid",
            "居民身份证号码的地区码不正确",
        ));
    }
    let num = |r: std::ops::Range<usize>| v[r].parse::<i32>().unwrap_or(0);
    let birth = Month::try_from(num(10..12) as u8)
        .ok()
        .and_then(|m| Date::from_calendar_date(num(6..10), m, num(12..14) as u8).ok())
        .filter(|d| d.year() >= 1900 && *d <= today)
        .ok_or((
            "the date of birth inside the resident ID number is not a valid date",
            "居民身份证号码中的出生日期不正确",
        ))?;
    if check_digit(&v[..17]) != v.chars().nth(17) {
        return Err((
            "the resident ID number's check digit does not match: a digit was probably mistyped",
            "居民身份证号码校验位不符，请核对是否输错",
        ));
    }
    let gender = if num(16..17) % 2 == 1 {
        Gender::Male
    } else {
        Gender::Female
    };
    Ok((v, ResidentId { birth, gender }))
}

/// Another ID document's number: 5 to 30 letters, digits or hyphens; a 统一社会信用代码 has
/// 18 characters.
pub fn other_id(kind: IdType, v: &str) -> Result<String, Refusal> {
    let v: String = v.trim().to_uppercase();
    if kind == IdType::CreditCode
        && !(v.len() == 18 && v.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err((
            "a unified social credit code has 18 letters and digits",
            "统一社会信用代码应为18位数字或字母",
        ));
    }
    if !(5..=30).contains(&v.len()) || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err((
            "an ID document number has 5 to 30 letters, digits or hyphens",
            "证件号码应为5至30位字母、数字或连字符",
        ));
    }
    Ok(v)
}

/// A date of birth, `YYYY-MM-DD`, between 1900 and today.
pub fn birth_date(v: &str, today: Date) -> Result<Date, Refusal> {
    let refuse = (
        "a date of birth is written YYYY-MM-DD, between 1900 and today",
        "出生日期格式为年-月-日（如1958-03-12），且不晚于今天",
    );
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(v.trim(), &fmt)
        .ok()
        .filter(|d| d.year() >= 1900 && *d <= today)
        .ok_or(refuse)
}

/// Masks an ID number as supervisors see it: the first four and the last four characters
/// (`6404**********1234`).
pub fn mask_id(v: &str) -> String {
    let c: Vec<char> = v.chars().collect();
    if c.len() <= 8 {
        return "*".repeat(c.len().max(4));
    }
    format!(
        "{}{}{}",
        c[..4].iter().collect::<String>(),
        "*".repeat(c.len() - 8),
        c[c.len() - 4..].iter().collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 12 - 03);

    #[test]
    fn phones() {
        assert_eq!(phone("139 1234 5678").unwrap(), "13912345678");
        assert_eq!(phone("+86 139-1234-5678").unwrap(), "13912345678");
        assert_eq!(phone("0951-5012345").unwrap(), "0951-5012345");
        assert_eq!(phone("09515012345").unwrap(), "0951-5012345");
        assert_eq!(phone("(010)62345678").unwrap(), "010-62345678");
        assert_eq!(phone("0951-5012345-802").unwrap(), "0951-5012345-802");
        assert_eq!(phone("0951-5012345转802").unwrap(), "0951-5012345-802");
        assert_eq!(phone("5012345").unwrap(), "5012345");
        assert_eq!(phone("4008123123").unwrap(), "4008123123");
        for bad in [
            "12345",
            "12912345678",
            "1391234567",
            "139123456789",
            "0951-123",
            "0951-0123456",
            "abc",
            "+1 2025550123",
            "",
        ] {
            assert!(phone(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn resident_ids() {
        // 11010519491231002X is the standard's own example.
        let (n, r) = resident_id("11010519491231002x", TODAY).unwrap();
        assert_eq!(n, "11010519491231002X");
        assert_eq!(r.birth, date!(1949 - 12 - 31));
        assert_eq!(r.gender, Gender::Female);
        let mut wrong = "110105194912310021".to_string();
        assert!(resident_id(&wrong, TODAY).unwrap_err().1.contains("校验位"));
        wrong = "110105194913310027".into();
        assert!(resident_id(&wrong, TODAY)
            .unwrap_err()
            .1
            .contains("出生日期"));
        assert!(resident_id("110105491231002", TODAY)
            .unwrap_err()
            .1
            .contains("18位"));
        assert!(resident_id("91010519491231002X", TODAY).is_err());
        let first17 = "64040219580312123";
        let full = format!("{first17}{}", check_digit(first17).unwrap());
        let (_, r) = resident_id(&full, TODAY).unwrap();
        assert_eq!(r.gender, Gender::Male);
        assert_eq!(mask_id(&full), format!("6404**********{}", &full[14..]));
    }

    #[test]
    fn ethnicities_and_dates() {
        assert_eq!(ETHNICITIES.len(), 56);
        assert_eq!(ethnicity("回").unwrap(), "回族");
        assert_eq!(ethnicity("维吾尔族").unwrap(), "维吾尔族");
        assert!(ethnicity("火星族").is_err());
        assert!(birth_date("1958-03-12", TODAY).is_ok());
        assert!(birth_date("2030-01-01", TODAY).is_err());
        assert!(birth_date("1958/03/12", TODAY).is_err());
        assert!(other_id(IdType::Passport, "E12345678").is_ok());
        assert!(other_id(IdType::Passport, "E1").is_err());
        assert!(other_id(IdType::CreditCode, "91640100MA76A1B23X").is_ok());
    }
}
