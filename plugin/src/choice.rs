//! Settings that take one of a few named values (where the models run, the latency mode), read
//! from a command line or a saved setting by name, in any case.

/// The value among `all` whose `label` is `text`, or a message that names the setting and lists
/// what it takes: "unknown latency mode 'fast': use lowest or safe".
pub fn parse<T: Copy>(text: &str, all: &[T], label: fn(T) -> &'static str, setting: &str) -> Result<T, String> {
    all.iter().copied().find(|&value| label(value).eq_ignore_ascii_case(text.trim())).ok_or_else(|| {
        let labels: Vec<&str> = all.iter().map(|&value| label(value)).collect();
        let listed = match labels.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::from("nothing"),
        };
        format!("unknown {setting} '{text}': use {listed}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(n: u8) -> &'static str {
        ["one", "two", "three"][usize::from(n)]
    }

    #[test]
    fn a_label_reads_in_any_case_and_anything_else_is_refused_with_the_choices() {
        assert_eq!(parse(" TWO ", &[0, 1, 2], label, "count"), Ok(1));
        assert_eq!(parse("four", &[0, 1, 2], label, "count"), Err("unknown count 'four': use one, two or three".into()));
        assert_eq!(parse("four", &[0, 1], label, "count"), Err("unknown count 'four': use one or two".into()));
    }
}
