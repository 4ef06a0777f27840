"""Match requests and their reports.

- :mod:`lims.reports.analysis` runs a match request through the analysis pipeline
  (:mod:`matching.analysis`) and stores its results (need-to-know applied); :mod:`lims.jobs`
  runs it in the background;
- :mod:`lims.reports.layout` puts words to a stored result's numbers for pages and reports;
- :mod:`lims.reports.issue` drafts, signs, issues and amends reports;
- :mod:`lims.reports.render` renders report bodies as HTML and PDF from one template per kind
  of document, with the figures of :mod:`lims.reports.figures` and the wording (ENFSI verbal
  scale, propositions) of :mod:`lims.reports.wording`;
- :mod:`lims.reports.views` holds the pages; the API is in :mod:`lims.api.requests`.
"""
