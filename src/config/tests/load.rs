//! Sources and overrides: key_file, --keys, config file vs body, flags, --dev.

use std::collections::BTreeMap;

use super::super::load::parse_keys_arg;
use super::*;

#[test]
fn keys_arg_forms() {
    let one = parse_keys_arg("key1: secret1").unwrap();
    assert_eq!(one, BTreeMap::from([("key1".into(), "secret1".into())]));
    let two = parse_keys_arg("key1: secret1\nkey2: secret2\n").unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(two["key2"], "secret2");
    assert_eq!(parse_keys_arg("key1:secret1").unwrap()["key1"], "secret1");
    let err = parse_keys_arg("justonetoken").unwrap_err().to_string();
    assert!(
        err.starts_with("--keys (or LIVEKIT_KEYS): cannot parse;"),
        "{err}"
    );
    assert!(!err.contains("justonetoken"));
    assert!(parse_keys_arg("").is_err());
}

#[test]
fn key_file_merges_and_warns_on_loose_permissions() {
    let dir = temp_dir("keyfile");
    let path = dir.join("keys.yaml");
    std::fs::write(&path, format!("filekey: {SECRET}\nshared: {SECRET}-file\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let yaml = format!(
        "key_file: {}\nkeys:\n  cfgkey: {SECRET}\n  shared: {SECRET}-config\n",
        path.display()
    );
    let loaded = load(&body(&yaml)).unwrap();
    let keys = &loaded.config.keys;
    assert_eq!(keys.len(), 3);
    assert_eq!(keys["shared"], format!("{SECRET}-file"));
    #[cfg(unix)]
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("readable by group or others (mode 644)")),
        "{:?}",
        loaded.warnings
    );

    // --keys wins over both.
    let mut opts = body(&yaml);
    opts.keys = Some(format!("shared: {SECRET}-flag"));
    assert_eq!(
        load(&opts).unwrap().config.keys["shared"],
        format!("{SECRET}-flag")
    );

    // A short secret in the key file is blamed on the key file.
    std::fs::write(&path, "short: abc\n").unwrap();
    let msg = load_err(&body(&yaml));
    assert_eq!(
        msg,
        format!(
            "key_file {}: keys.short: secret is shorter than 32 characters (use --dev for \
             short development secrets)",
            path.display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unreadable_key_file_and_config_file() {
    let dir = temp_dir("missing");
    let missing = dir.join("nope.yaml");
    let msg = load_err(&body(&format!("key_file: {}\n", missing.display())));
    assert_eq!(
        msg,
        format!(
            "key_file {}: cannot read: No such file or directory",
            missing.display()
        )
    );
    let opts = LoadOptions {
        config_file: Some(missing.clone()),
        ..LoadOptions::default()
    };
    assert_eq!(
        load_err(&opts),
        format!(
            "config file {}: cannot read: No such file or directory",
            missing.display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_file_is_read_and_body_wins() {
    let dir = temp_dir("file");
    let path = dir.join("config.yaml");
    std::fs::write(&path, format!("port: 9001\nkeys:\n  k: {SECRET}\n")).unwrap();
    let mut opts = LoadOptions {
        config_file: Some(path.clone()),
        ..LoadOptions::default()
    };
    assert_eq!(load(&opts).unwrap().config.port, 9001);
    // Errors name the file.
    std::fs::write(&path, "port: 9001\n").unwrap();
    assert!(load_err(&opts).starts_with(&format!("{}: keys: no API keys", path.display())));
    opts.config_body = Some(format!("port: 9002\nkeys:\n  k: {SECRET}\n"));
    assert_eq!(load(&opts).unwrap().config.port, 9002);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dev_defaults() {
    let opts = LoadOptions {
        dev: true,
        ..LoadOptions::default()
    };
    let c = load(&opts).unwrap().config;
    assert!(c.development);
    assert_eq!(c.keys, BTreeMap::from([("devkey".into(), "secret".into())]));
    assert_eq!(c.bind_addresses, ["127.0.0.1", "::1"]);
    assert_eq!(c.rtc.udp_port, Some(PortRange::single(7882)));
    assert_eq!(c.udp_ports(), (7882, 7882));
    assert_eq!(c.logging.level, "debug");

    // Explicit settings survive --dev; `development: true` in YAML acts like --dev.
    let yaml = "development: true\nbind_addresses: [0.0.0.0]\nkeys:\n  mine: short\n\
                rtc:\n  udp_port: 9000-9010\nlogging:\n  level: info\n";
    let c = load(&body(yaml)).unwrap().config;
    assert!(c.development);
    assert_eq!(c.keys.len(), 1);
    assert_eq!(c.bind_addresses, ["0.0.0.0"]);
    assert_eq!(c.udp_ports(), (9000, 9010));
    assert_eq!(c.logging.level, "info");
}

#[test]
fn flags_override_the_file() {
    let yaml = format!(
        "port: 7000\nbind_addresses: [10.0.0.1]\nkeys:\n  k: {SECRET}\n\
         rtc:\n  node_ip: 1.1.1.1\n  udp_port: 5000\nredis:\n  address: file:6379\n"
    );
    let opts = LoadOptions {
        bind: vec!["192.168.0.1".into(), "::".into()],
        port: Some(0),
        node_ip: Some("2.2.2.2".into()),
        udp_port: Some("7882-7892".into()),
        redis_host: Some("flag:6379".into()),
        dev: true,
        ..body(&yaml)
    };
    let c = load(&opts).unwrap().config;
    assert_eq!(c.port, 0);
    assert_eq!(c.bind_addresses, ["192.168.0.1", "::"]);
    assert_eq!(c.rtc.node_ip.as_deref(), Some("2.2.2.2"));
    assert_eq!(c.udp_ports(), (7882, 7892));
    assert_eq!(c.redis.address.as_deref(), Some("flag:6379"));
    // --dev adds no dev key when keys exist.
    assert_eq!(c.keys.keys().collect::<Vec<_>>(), ["k"]);

    let bad = LoadOptions {
        udp_port: Some("x".into()),
        ..body(&yaml)
    };
    assert_eq!(
        load_err(&bad),
        "--udp-port: 'x' is not a port or a port range (e.g. 7882 or 7882-7892)"
    );
    let bad = LoadOptions {
        udp_port: Some("9-1".into()),
        ..body(&yaml)
    };
    assert_eq!(load_err(&bad), "--udp-port: range 9-1 starts after it ends");
}

#[test]
fn keys_flag_supplies_keys() {
    let opts = LoadOptions {
        keys: Some(format!("a: {SECRET}\nb: {SECRET}")),
        ..LoadOptions::default()
    };
    assert_eq!(load(&opts).unwrap().config.keys.len(), 2);
    let opts = LoadOptions {
        keys: Some("a: short".into()),
        ..LoadOptions::default()
    };
    assert!(load_err(&opts).starts_with("--keys: keys.a: secret is shorter than 32"));
    assert_eq!(
        load_err(&LoadOptions::default()),
        "command line: keys: no API keys configured: set keys, key_file, --keys or \
         LIVEKIT_KEYS (or use --dev)"
    );
}

#[test]
fn turn_secret_file_is_read_and_guarded() {
    let dir = temp_dir("turnsecret");
    let path = dir.join("turn.secret");
    std::fs::write(&path, "  north-wind \n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let yaml = format!(
        "keys:\n  k: {SECRET}\nrtc:\n  turn_servers:\n    - host: turn.example.com\n      port: 443\n      protocol: tls\n      secret_file: {}\n",
        path.display()
    );
    let loaded = load(&body(&yaml)).unwrap();
    assert_eq!(loaded.config.rtc.turn_servers[0].secret, "north-wind");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).unwrap();
        let err = load(&body(&yaml)).unwrap_err().to_string();
        assert!(
            err.contains("rtc.turn_servers[0].secret_file") && err.contains("mode 604"),
            "{err}"
        );
    }
}
