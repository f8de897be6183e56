// The offline page: try again on a click, and by itself once back online.

import "./styles/base.css";

const retry = (): void => location.replace("/");
document.getElementById("retry")?.addEventListener("click", retry);
window.addEventListener("online", retry);
