// The sign-in / register dialog, shared by the listener page and the console.

import { Api, ApiError, type Me } from "./api";
import { $, announce, h } from "./dom";

export class AuthDialog {
  readonly dialog: HTMLDialogElement;
  private mode: "signin" | "register" = "signin";
  private resolve: ((me: Me | null) => void) | null = null;

  constructor(
    private readonly api: Api,
    private readonly options: { allowRegister: boolean } = { allowRegister: true },
  ) {
    this.dialog = build(options.allowRegister);
    document.body.append(this.dialog);
    const form = $<HTMLFormElement>("form", this.dialog);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.submit(form);
    });
    $("#auth-cancel", this.dialog).addEventListener("click", () => this.close(null));
    this.dialog.addEventListener("close", () => this.resolve?.(null));
    const toggle = this.dialog.querySelector<HTMLButtonElement>("#auth-toggle");
    toggle?.addEventListener("click", () => this.setMode(this.mode === "signin" ? "register" : "signin"));
  }

  /** Open the dialog; resolves with the account once signed in, or null if dismissed. */
  open(mode: "signin" | "register" = "signin"): Promise<Me | null> {
    this.setMode(mode);
    $("#auth-error", this.dialog).textContent = "";
    this.dialog.showModal();
    $<HTMLInputElement>("#auth-email", this.dialog).focus();
    return new Promise((resolve) => (this.resolve = resolve));
  }

  private setMode(mode: "signin" | "register"): void {
    this.mode = mode;
    const register = mode === "register";
    $("#auth-title", this.dialog).textContent = register ? "Create an account" : "Sign in";
    $("#auth-submit", this.dialog).textContent = register ? "Create account" : "Sign in";
    const name = $<HTMLInputElement>("#auth-name", this.dialog);
    $(".auth-name-row", this.dialog).hidden = !register;
    name.required = register;
    $<HTMLInputElement>("#auth-password", this.dialog).autocomplete = register ? "new-password" : "current-password";
    const toggle = this.dialog.querySelector("#auth-toggle");
    if (toggle) toggle.textContent = register ? "I have an account: sign in" : "New here? Create an account";
  }

  private async submit(form: HTMLFormElement): Promise<void> {
    const data = new FormData(form);
    const email = String(data.get("email") ?? "").trim();
    const password = String(data.get("password") ?? "");
    const error = $("#auth-error", this.dialog);
    const button = $<HTMLButtonElement>("#auth-submit", this.dialog);
    button.disabled = true;
    error.textContent = "";
    try {
      const me =
        this.mode === "register"
          ? await this.api.register(email, String(data.get("display_name") ?? "").trim(), password)
          : await this.api.login(email, password);
      announce(`Signed in as ${me.display_name}`);
      form.reset();
      this.close(me);
    } catch (err) {
      error.textContent =
        err instanceof ApiError
          ? err.status === 401
            ? "That email and password do not match an account."
            : err.message
          : "The server could not be reached; try again.";
    } finally {
      button.disabled = false;
    }
  }

  private close(me: Me | null): void {
    const resolve = this.resolve;
    this.resolve = null;
    if (this.dialog.open) this.dialog.close();
    resolve?.(me);
  }
}

function build(allowRegister: boolean): HTMLDialogElement {
  return h(
    "dialog",
    { id: "auth-dialog", "aria-labelledby": "auth-title" },
    h(
      "form",
      { method: "dialog", class: "stack" },
      h("h2", { id: "auth-title" }, "Sign in"),
      h(
        "div",
        { class: "field auth-name-row", hidden: true },
        h("label", { for: "auth-name" }, "Display name"),
        h("input", { id: "auth-name", name: "display_name", autocomplete: "nickname", maxlength: 64 }),
      ),
      h(
        "div",
        { class: "field" },
        h("label", { for: "auth-email" }, "Email"),
        h("input", { id: "auth-email", name: "email", type: "email", autocomplete: "email", required: true }),
      ),
      h(
        "div",
        { class: "field" },
        h("label", { for: "auth-password" }, "Password"),
        h("input", {
          id: "auth-password",
          name: "password",
          type: "password",
          autocomplete: "current-password",
          required: true,
          minlength: 1,
        }),
      ),
      h("p", { id: "auth-error", class: "error", role: "alert" }),
      h(
        "div",
        { class: "row" },
        h("button", { id: "auth-submit", type: "submit", class: "primary" }, "Sign in"),
        h("button", { id: "auth-cancel", type: "button" }, "Cancel"),
      ),
      allowRegister ? h("button", { id: "auth-toggle", type: "button", class: "link" }, "New here? Create an account") : null,
    ),
  );
}
