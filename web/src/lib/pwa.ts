// The PWA side of every page: the service worker (the app shell offline)
// and the install prompt.

interface InstallPrompt extends Event {
  prompt(): Promise<void>;
  userChoice: Promise<{ outcome: "accepted" | "dismissed" }>;
}

export function registerServiceWorker(): void {
  if (!("serviceWorker" in navigator)) return;
  const register = (): void => {
    navigator.serviceWorker
      .register("/sw.js", { scope: "/" })
      .then(() => (document.documentElement.dataset.sw = "registered"))
      .catch((err: unknown) => {
        document.documentElement.dataset.sw = "failed";
        console.warn("service worker not registered:", err);
      });
  };
  if (document.readyState === "complete") register();
  else window.addEventListener("load", register, { once: true });
}

/** Show ``button`` when the browser offers installation; it prompts on click. */
export function installPrompt(button: HTMLButtonElement | null): void {
  let deferred: InstallPrompt | null = null;
  window.addEventListener("beforeinstallprompt", (event) => {
    event.preventDefault();
    deferred = event as InstallPrompt;
    document.documentElement.dataset.installable = "true";
    if (button) button.hidden = false;
  });
  window.addEventListener("appinstalled", () => {
    document.documentElement.dataset.installed = "true";
    if (button) button.hidden = true;
  });
  button?.addEventListener("click", async () => {
    if (!deferred) return;
    await deferred.prompt();
    await deferred.userChoice;
    deferred = null;
    button.hidden = true;
  });
}
