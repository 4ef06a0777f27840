// Progressive: without JavaScript the browser's own Print command does the same.
const printButton = document.getElementById("print");
printButton.hidden = false;
printButton.addEventListener("click", () => window.print());
