//! The browser entry point: hydrates the page the server rendered, then marks `<body>` with
//! `data-hydrated`, so that whoever drives the page (end-to-end tests) knows its buttons
//! and forms now answer.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    if let Some(body) = leptos::prelude::document().body() {
        // Only a test hook: a page that cannot be marked still works.
        let _ = body.set_attribute("data-hydrated", "");
    }
}
