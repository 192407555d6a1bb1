// The app's commands, named once. `build.rs` includes this file to generate the ACL's
// `allow-*` permissions, `lib.rs` to register the handlers, `commands.rs` for the list the
// capability test checks. `with_commands!(m)` calls macro `m` with every command's path.
macro_rules! with_commands {
    ($m:ident) => {
        $m![
            commands::dashboard,
            commands::check_now,
            commands::reauth,
            commands::cancel_reauth,
            commands::device_reauth,
            commands::paste_token,
            commands::pair,
            commands::pair_preview,
            commands::unpair,
            commands::settings,
            commands::save_settings,
            challenge::challenge_view,
            challenge::open_challenge,
        ]
    };
}

// The command names alone, for the build script's `AppManifest::commands`.
#[allow(unused_macros)]
macro_rules! command_names {
    ($($module:ident :: $command:ident),* $(,)?) => {
        &[$(stringify!($command)),*]
    };
}
