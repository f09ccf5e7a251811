"""Stage 6, preview: what the renders look like, without paying for anything.

Takes a compiled board, its lock and its renders (fal's or the animatics);
gives the final cut and its OpenTimelineIO timeline (`cut`) and the HTML
storyboard sheet (`sheet`, from `sheet.html`).
"""
