"""The pure scoring core (no Django; imports only ``patients.imaging.core`` outside itself).

Layers, each importing only those before it: ``labels``, ``stats`` and ``device`` (shared; the
device of ``LUSWEB_DEVICE``), ``models``
(network definitions), ``features`` (preprocessing, hand-crafted features, the featuriser and
the recipe), ``inference`` (bundle, scorer, Grad-CAM, aggregation, exam, six-class, domain
check; never imports training), ``training`` (data sets, caches, SORD, fitting, CV, fine-tuning,
the papers' networks, the ``train`` command, and the ``experiment`` command's directions:
usaugment copies, artefact masks, self-supervised pretraining), ``severity`` (the patient-severity models). ``cli`` is the command line.
"""
