// Progressive enhancement of the inbox: when the server announces a new message (server-sent
// events on /events), say so in the page's live region with a link to show it. Without
// JavaScript the page works the same; reloading shows new mail.
(function () {
  "use strict";
  var region = document.getElementById("live");
  if (!region || !window.EventSource) {
    return;
  }
  var source = new EventSource("/events");
  source.addEventListener("message", function () {
    region.textContent = "";
    var link = document.createElement("a");
    link.href = region.getAttribute("data-href") || "/";
    link.textContent = "Nouveau message reçu : afficher";
    region.appendChild(link);
  });
})();
