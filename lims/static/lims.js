// Progressive: after a refused form, put the cursor in the first field that needs fixing.
// A file of its own (never inline) so the Content-Security-Policy can forbid inline script.
const firstInvalid = document.querySelector('[aria-invalid="true"]');
if (firstInvalid) firstInvalid.focus();
