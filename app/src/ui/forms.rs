//! Small pieces shared by forms: error messages next to fields and above forms.

use crate::error::AppError;
use leptos::prelude::*;

/// The message for `field` if `result` failed on it.
pub fn field_message<T>(result: &Option<Result<T, AppError>>, field: &str) -> Option<String> {
    match result {
        Some(Err(error)) if error.field() == Some(field) => Some(error.message()),
        _ => None,
    }
}

/// The message for a failure that is not about one field.
pub fn form_message<T>(result: &Option<Result<T, AppError>>, fields: &[&str]) -> Option<String> {
    match result {
        Some(Err(error)) if !error.field().is_some_and(|f| fields.contains(&f)) => {
            Some(error.message())
        }
        _ => None,
    }
}

/// A labelled input with its error message, wired for screen readers.
#[component]
pub fn Field(
    label: &'static str,
    name: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional, into)] value: String,
    #[prop(optional)] required: bool,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional)] maxlength: Option<usize>,
    #[prop(into)] error: Signal<Option<String>>,
    #[prop(optional)] id_prefix: Option<String>,
) -> impl IntoView {
    let id = format!("{}{name}", id_prefix.unwrap_or_default());
    let error_id = format!("{id}-error");
    let described = error_id.clone();
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <input
                id=id
                name=name
                type=kind
                value=value
                required=required
                autocomplete=autocomplete
                maxlength=maxlength
                aria-invalid=move || error.get().map(|_| "true")
                aria-describedby=move || error.get().map(|_| described.clone())
            />
            {move || error.get().map(|message| view! { <p class="field-error" id=error_id.clone()>{message}</p> })}
        </div>
    }
}

/// A banner for a form-level error, if any.
#[component]
pub fn FormError(#[prop(into)] message: Signal<Option<String>>) -> impl IntoView {
    move || {
        message
            .get()
            .map(|message| view! { <p class="form-error" role="alert">{message}</p> })
    }
}

/// The question a [`ConfirmButton`] has open. A page that builds its buttons again as it
/// follows live changes provides one, so that a question stays open across a refresh.
#[derive(Clone, Copy)]
pub struct OpenQuestion(pub RwSignal<Option<String>>);

impl OpenQuestion {
    pub fn provide() {
        provide_context(Self(RwSignal::new(None)));
    }
}

/// A button that asks before it acts: the first press shows the question with
/// "Confirm" and "Cancel"; only "Confirm" runs `on_confirm`.
#[component]
pub fn ConfirmButton(
    label: &'static str,
    question: String,
    on_confirm: Callback<()>,
) -> impl IntoView {
    let open = use_context::<OpenQuestion>()
        .map_or_else(|| RwSignal::new(None), |OpenQuestion(open)| open);
    let asking = {
        let question = question.clone();
        move || open.with(|open| open.as_deref() == Some(question.as_str()))
    };
    let ask = {
        let question = question.clone();
        move |_| open.set(Some(question.clone()))
    };
    view! {
        <Show
            when=asking
            fallback=move || view! { <button type="button" on:click=ask.clone()>{label}</button> }
        >
            <span class="confirm" role="group" aria-label=question.clone()>
                <span>{question.clone()}</span>
                <button type="button" class="danger" on:click=move |_| { open.set(None); on_confirm.run(()); }>"Confirm"</button>
                <button type="button" on:click=move |_| open.set(None)>"Cancel"</button>
            </span>
        </Show>
    }
}
