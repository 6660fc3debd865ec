// Times are written in UTC; a hover shows the reader's local time. No build step.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const node of document.querySelectorAll("time[datetime]")) {
    const moment = new Date(node.getAttribute("datetime"));
    if (!Number.isNaN(moment.getTime())) {
      node.title = `${moment.toLocaleString()} (your local time)`;
    }
  }
  // "/" moves to the first field of the page's form, as in most web applications.
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.key !== "/" || target.closest("input, select, textarea")) return;
    const field = document.querySelector("main input:not([type=hidden]), main select");
    if (field) { event.preventDefault(); field.focus(); }
  });
});
