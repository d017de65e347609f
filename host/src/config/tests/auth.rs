//! Tokens, and the rule against serving unauthenticated on the network.

use super::*;

#[test]
fn non_loopback_address_without_tokens_is_refused_with_the_fix() {
    let file = File::new("[server]\nlisten = \"0.0.0.0:8080\"\n");
    let words = [
        "0.0.0.0:8080 is not a loopback address",
        "auth.admin_token_sha256",
        "sha256sum",
        "127.0.0.1",
    ];
    assert_invalid(file.load(), "server.listen", &file_origin(&file), &words);

    let overrides = Overrides {
        listen: Some("[::]:0".parse().unwrap()),
    };
    let result = Config::load(None, NO_ENV, &overrides);
    assert_invalid(
        result,
        "server.listen",
        &Origin::Flag("--listen".into()),
        &["[::]:0 is not a loopback"],
    );

    let mut config = Config::default();
    config.server.listen = "192.0.2.1:80".parse().unwrap();
    let err = config.check_exposure().unwrap_err().to_string();
    assert!(
        err.starts_with("server.listen (default): 192.0.2.1:80 is not a loopback"),
        "{err}"
    );
}

#[test]
fn non_loopback_address_with_a_token_is_allowed() {
    let admin = TokenHash::of("root");
    load(&format!(
        "[server]\nlisten = \"0.0.0.0:8080\"\n[auth]\nadmin_token_sha256 = \"{admin}\"\n"
    ))
    .unwrap();
    let tenant = TokenHash::of("t");
    let config = load(&format!(
        "[server]\nlisten = \"[::]:8080\"\n[tenants.a]\ntoken_sha256 = \"{tenant}\"\n"
    ))
    .unwrap();
    assert!(config.auth_enabled());
    config.check_exposure().unwrap();
}

#[test]
fn loopback_addresses_without_tokens_are_allowed() {
    for addr in ["127.0.0.1:8080", "127.1.2.3:0", "[::1]:8080", "[::ffff:127.0.0.1]:8080"] {
        let config = load(&format!("[server]\nlisten = \"{addr}\"\n")).unwrap();
        assert!(!config.auth_enabled());
        config.check_exposure().unwrap();
    }
}

#[test]
fn tokens_identify_the_admin_a_tenant_or_nobody() {
    let (admin, a) = (TokenHash::of("admin-secret"), TokenHash::of("a-secret"));
    let config = load(&format!(
        "[auth]\nadmin_token_sha256 = \"{admin}\"\n[tenants.a]\ntoken_sha256 = \"{a}\"\n[tenants.b]\nlevel = \"none\"\n"
    ))
    .unwrap();
    assert!(config.auth_enabled());
    let tokens = config.tokens();
    assert_eq!(tokens.identify("admin-secret"), Identity::Admin);
    assert_eq!(tokens.identify("a-secret"), Identity::Tenant("a".into()));
    assert_eq!(tokens.identify("b-secret"), Identity::Unknown);
    assert_eq!(tokens.identify("admin-secret\n"), Identity::Unknown);
    assert_eq!(hash_token("a-secret"), *a.as_bytes());
}

#[test]
fn bad_or_shared_token_digests_are_refused() {
    let file = File::new("[auth]\nadmin_token_sha256 = \"secret\"\n");
    assert_invalid(
        file.load(),
        "auth.admin_token_sha256",
        &file_origin(&file),
        &["sha256sum"],
    );

    let same = TokenHash::of("same");
    let file = File::new(&format!(
        "[auth]\nadmin_token_sha256 = \"{same}\"\n[tenants.a]\ntoken_sha256 = \"{same}\"\n"
    ));
    assert_invalid(
        file.load(),
        "tenants.a.token_sha256",
        &file_origin(&file),
        &["auth.admin_token_sha256"],
    );

    let file = File::new(&format!(
        "[tenants.a]\ntoken_sha256 = \"{same}\"\n[tenants.b]\ntoken_sha256 = \"{same}\"\n"
    ));
    assert_invalid(
        file.load(),
        "tenants.b.token_sha256",
        &file_origin(&file),
        &["tenants.a.token_sha256"],
    );
}
