use super::*;

fn table() -> Table {
    let mut t = Table::new("throttled | by host", &["host", "throttled_pct", "note"]);
    t.push(vec!["a".into(), Cell::num(12.3456, 1), Cell::Empty]);
    t.push(vec!["b,c".into(), Cell::num(7.0, 1), "x|y".into()]);
    t.notes.push("one note".into());
    t
}

#[test]
fn each_format_renders_the_same_table() {
    let t = [table()];
    let text = render(&t, Format::Text);
    assert_eq!(
        text,
        "throttled | by host\nhost  throttled_pct  note\na              12.3  -\nb,c             7.0  x|y\nnote: one note\n"
    );
    let csv = render(&t, Format::Csv);
    assert_eq!(csv, "host,throttled_pct,note\na,12.3456,\n\"b,c\",7,x|y\n");
    let md = render(&t, Format::Markdown);
    assert!(md.starts_with("### throttled \\| by host\n\n| host | throttled_pct | note |\n| --- | ---: | --- |\n| a | 12.3 | - |\n| b,c | 7.0 | x\\|y |\n"), "{md}");
    let json: serde_json::Value = serde_json::from_str(&render(&t, Format::Json)).unwrap();
    assert_eq!(json[0]["rows"][0]["throttled_pct"], 12.3456);
    assert_eq!(json[0]["rows"][0]["note"], serde_json::Value::Null);
    assert_eq!(json[0]["notes"][0], "one note");
    assert_eq!("md".parse::<Format>().unwrap(), Format::Markdown);
    assert!("xml".parse::<Format>().is_err());
}
