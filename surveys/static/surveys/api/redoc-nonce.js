// Redoc's bundle inserts <style> elements as it loads (its CSS modules) and as it renders
// (styled-components), before it could be told the page's CSP nonce. Style elements created
// by script get the nonce of this script's own tag; markup injected into the page does not
// pass through createElement, so it stays refused.
(function () {
  "use strict";
  const nonce = document.currentScript ? document.currentScript.nonce : "";
  if (!nonce) return;
  const create = Document.prototype.createElement;
  Document.prototype.createElement = function (name, options) {
    const element = create.call(this, name, options);
    if (String(name).toLowerCase() === "style") element.nonce = nonce;
    return element;
  };
})();
