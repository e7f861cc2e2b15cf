//! Asking the user before something that cannot be undone.

use std::io::{BufRead, Write};

/// Writes `question [y/N]: ` and reads one line: `y` or `yes` (any case) confirms; anything
/// else, an empty line or the end of input declines.
pub fn ask(
    input: &mut impl BufRead,
    output: &mut impl Write,
    question: &str,
) -> std::io::Result<bool> {
    write!(output, "{question} [y/N]: ")?;
    output.flush()?;
    let mut answer = String::new();
    if input.read_line(&mut answer)? == 0 {
        writeln!(output)?;
        return Ok(false);
    }
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(input: &str) -> (bool, String) {
        let mut output = Vec::new();
        let confirmed = ask(
            &mut input.as_bytes(),
            &mut output,
            "Rotate team-a/okta now?",
        )
        .unwrap();
        (confirmed, String::from_utf8(output).unwrap())
    }

    #[test]
    fn only_yes_confirms() {
        for yes in ["y\n", "Y\n", "yes\n", " YES \n", "y"] {
            assert!(answer(yes).0, "{yes:?}");
        }
        for no in ["\n", "n\n", "no\n", "yep\n", "sure\n"] {
            assert!(!answer(no).0, "{no:?}");
        }
    }

    #[test]
    fn the_question_shows_the_safe_default_and_end_of_input_declines() {
        let (confirmed, shown) = answer("");
        assert!(!confirmed);
        assert_eq!(shown, "Rotate team-a/okta now? [y/N]: \n");
    }
}
