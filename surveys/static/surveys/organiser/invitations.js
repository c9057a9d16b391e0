// The invitation counts follow the download: the form's answer is the CSV file, so the page
// stays where it is; once the links exist the counts are read again from the page's own URL
// and swapped in, and a status line says so.
(function () {
  "use strict";
  const form = document.querySelector(".invitation-form form");
  const counts = document.getElementById("invitation-counts");
  if (!form || !counts) return;
  const status = document.getElementById("invitation-refresh");
  const before = counts.textContent;

  async function reread() {
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      if (!response.ok) return false;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("invitation-counts");
      if (!fresh || fresh.textContent === before) return false;
      counts.replaceWith(fresh);
      if (status) status.textContent = status.dataset.updated || "";
      return true;
    } catch (error) {
      return false;  // a network blip: the next attempt or a reload shows the counts
    }
  }

  form.addEventListener("submit", () => {
    // The download takes as long as the links take to make: look again for half a minute.
    let tries = 0;
    const timer = setInterval(async () => {
      tries += 1;
      if ((await reread()) || tries >= 15) clearInterval(timer);
    }, 2000);
  });
})();
