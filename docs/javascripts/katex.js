// Render the math that pymdownx.arithmatex (generic mode) leaves in \( \) and \[ \] spans, with the KaTeX
// copy served from this site (assets/katex/, put there by .ci/docs.sh).
function renderMath() {
  document.querySelectorAll(".arithmatex").forEach((el) => {
    renderMathInElement(el, {
      delimiters: [
        { left: "\\(", right: "\\)", display: false },
        { left: "\\[", right: "\\]", display: true },
      ],
      throwOnError: false,
    });
  });
}
if (typeof document$ !== "undefined") {
  document$.subscribe(renderMath);   // material's instant navigation
} else {
  document.addEventListener("DOMContentLoaded", renderMath);
}
