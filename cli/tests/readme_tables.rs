//! The README's cost and drops tables are the output of `livepay sim --readme`, never typed by
//! hand: this test fails when they differ, and `LIVEPAY_BLESS=1` rewrites them in place.

mod common;

use common::run;

const BEGIN: &str = "<!-- livepay sim --readme: begin -->\n";
const END: &str = "<!-- livepay sim --readme: end -->";

#[test]
fn the_readme_cost_tables_are_the_output_of_sim_readme() {
    let out = run(&["sim", "--readme"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).expect("UTF-8 Markdown");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).expect("the workspace README");
    let start = readme.find(BEGIN).expect("the begin marker") + BEGIN.len();
    let end = readme[start..].find(END).expect("the end marker") + start;
    if readme[start..end] == generated {
        return;
    }
    if std::env::var_os("LIVEPAY_BLESS").is_some_and(|v| v == "1") {
        let updated = format!("{}{generated}{}", &readme[..start], &readme[end..]);
        std::fs::write(path, updated).expect("README written");
        return;
    }
    panic!(
        "README.md's cost tables differ from `livepay sim --readme`; regenerate them with\n  \
         LIVEPAY_BLESS=1 cargo test -p livepay-cli --test readme_tables\n\ngenerated:\n{generated}"
    );
}
