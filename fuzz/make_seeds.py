#!/usr/bin/env python3
"""Seeds for the fuzz corpora, from the repository's own fixtures and test builders.

    python3 fuzz/make_seeds.py REPO_ROOT OUTDIR

Writes OUTDIR/<target>/...: an XDM zip, METADATA.XML and CDA documents laid out as
vault/tests/common/mod.rs builds them; the DICOM files of tests/fixtures/dicom/make_dicom.py
(needs pydicom); the text/calendar parts and whole messages of agenda/tests/fixtures; the demo
catalogue; an ordonnance.json alone and attached; identifiers; SMTP sessions; IMAP command
lines and LOGIN pairs. The committed corpora started from these, then grew by fuzzing.
"""
import os, io, sys, zipfile, base64, hashlib, email, subprocess, shutil
root = sys.argv[1]; out = sys.argv[2]
def put(t, name, data):
    d = os.path.join(out, t); os.makedirs(d, exist_ok=True)
    if isinstance(data, str): data = data.encode()
    open(os.path.join(d, name), 'wb').write(data)

INS = "284057511204339"
pdf = b"%PDF-1.4\n% compte rendu\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
def cda(body_pdf=None):
    body = ('<nonXMLBody><text mediaType="application/pdf" representation="B64">%s</text></nonXMLBody>' % base64.b64encode(body_pdf).decode()) if body_pdf else \
      '<structuredBody><component><section><title>Résultats</title><text><paragraph>Hémoglobine : 13,5 g/dL</paragraph></text></section></component><component><section><title>Conclusion</title><text>Bilan <content>normal</content>.</text></section></component></structuredBody>'
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <id root="1.2.250.1.999.1" extension="DOC-1"/>
  <code code="11502-2" codeSystem="2.16.840.1.113883.6.1" displayName="CR de biologie"/>
  <title>CR de biologie</title>
  <effectiveTime value="20240115103000+0100"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <recordTarget><patientRole><id root="1.2.250.1.213.1.4.8" extension="{INS}"/>
    <patient><name><given>Camille</given><family>DURAND</family></name></patient></patientRole></recordTarget>
  <author><time value="20240115103000+0100"/><assignedAuthor><id root="1.2.250.1.71.4.2.1" extension="810003456780"/>
    <telecom value="mailto:labo@chu.mshub.test"/>
    <assignedPerson><name><prefix>Dr</prefix><given>Claire</given><family>MARTIN</family></name></assignedPerson>
    <representedOrganization><name>Laboratoire du CHU</name></representedOrganization></assignedAuthor></author>
  <component>{body}</component>
</ClinicalDocument>
'''.encode()
def metadata(docs):
    ent = ""
    for i,(uri, content, mime) in enumerate(docs):
        pid = f"{INS}^^^&amp;1.2.250.1.213.1.4.8&amp;ISO"
        ent += f'''<rim:ExtrinsicObject id="Document{i:02}" mimeType="{mime}" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">
<rim:Slot name="creationTime"><rim:ValueList><rim:Value>20240115103000</rim:Value></rim:ValueList></rim:Slot>
<rim:Slot name="hash"><rim:ValueList><rim:Value>{hashlib.sha1(content).hexdigest()}</rim:Value></rim:ValueList></rim:Slot>
<rim:Slot name="size"><rim:ValueList><rim:Value>{len(content)}</rim:Value></rim:ValueList></rim:Slot>
<rim:Slot name="URI"><rim:ValueList><rim:Value>{uri}</rim:Value></rim:ValueList></rim:Slot>
<rim:Slot name="sourcePatientId"><rim:ValueList><rim:Value>{pid}</rim:Value></rim:ValueList></rim:Slot>
<rim:Name><rim:LocalizedString value="Compte rendu"/></rim:Name>
<rim:Classification classificationScheme="urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d" classifiedObject="Document{i:02}" nodeRepresentation="">
<rim:Slot name="authorPerson"><rim:ValueList><rim:Value>810003456780^MARTIN^Claire^^^Dr^^^&amp;1.2.250.1.71.4.2.1&amp;ISO</rim:Value></rim:ValueList></rim:Slot>
<rim:Slot name="authorTelecom"><rim:ValueList><rim:Value>^^Internet^labo@chu.mshub.test</rim:Value></rim:ValueList></rim:Slot></rim:Classification>
<rim:Classification classificationScheme="urn:uuid:f0306f51-975f-434e-a61c-c59651d33983" classifiedObject="Document{i:02}" nodeRepresentation="11502-2">
<rim:Slot name="codingScheme"><rim:ValueList><rim:Value>2.16.840.1.113883.6.1</rim:Value></rim:ValueList></rim:Slot></rim:Classification>
<rim:Classification classificationScheme="urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f" classifiedObject="Document{i:02}" nodeRepresentation="N"/>
<rim:ExternalIdentifier identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427" registryObject="Document{i:02}" value="{pid}">
<rim:Name><rim:LocalizedString value="XDSDocumentEntry.patientId"/></rim:Name></rim:ExternalIdentifier></rim:ExtrinsicObject>
'''
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">
<rim:RegistryObjectList>{ent}<rim:RegistryPackage id="SubmissionSet01"/></rim:RegistryObjectList></lcm:SubmitObjectsRequest>
'''.encode()
def xdm(docs, method=zipfile.ZIP_DEFLATED):
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', method) as z:
        z.writestr("INDEX.HTM", "<html><body>XDM</body></html>")
        z.writestr("README.TXT", "IHE XDM media")
        z.writestr("IHE_XDM/SUBSET01/METADATA.XML", metadata(docs))
        for uri, c, _ in docs: z.writestr("IHE_XDM/SUBSET01/" + uri, c)
    return b.getvalue()
cda_s, cda_p = cda(), cda(pdf)
x1 = xdm([("DOC0001.XML", cda_s, "text/xml")])
x2 = xdm([("DOC0001.PDF", pdf, "application/pdf"), ("DOC0002.XML", cda_p, "text/xml")], zipfile.ZIP_STORED)
put("vault_xdm", "xdm-cda.zip", x1); put("vault_xdm", "xdm-pdf-cda-stored.zip", x2)
put("vault_xdm", "metadata.xml", metadata([("DOC0001.XML", cda_s, "text/xml")]))
put("vault_xdm", "patient-id.txt", f"{INS}^^^&1.2.250.1.213.1.4.8&ISO")
put("vault_cda", "cda-structured.xml", cda_s); put("vault_cda", "cda-pdf.xml", cda_p)

# DICOM: the generator of the imaging tests
dd = os.path.join(out, "_dicom"); os.makedirs(dd, exist_ok=True)
subprocess.run([sys.executable, os.path.join(root, "tests/fixtures/dicom/make_dicom.py"), dd], check=True)
for f in sorted(os.listdir(dd)):
    p = os.path.join(dd, f)
    # rle-short.dcm panics inside dicom-rs (caught by the hub, not by libFuzzer): it is kept
    # as a reproducer in fuzz/artifacts/vault_dicom/, not as a seed.
    if f == "rle-short.dcm":
        continue
    if os.path.isfile(p) and os.path.getsize(p) <= 256*1024:
        put("vault_dicom", f, open(p,'rb').read())

# ICS: the text/calendar parts of the agenda fixtures
def ics_of(raw):
    m = email.message_from_bytes(raw)
    for part in m.walk():
        if part.get_content_type() in ("text/calendar", "application/ics"):
            return part.get_payload(decode=True)
for f in sorted(os.listdir(os.path.join(root, "agenda/tests/fixtures"))):
    if f.endswith(".eml"):
        raw = open(os.path.join(root, "agenda/tests/fixtures", f), 'rb').read()
        c = ics_of(raw)
        if c: put("agenda_ics", f.replace(".eml", ".ics"), c)
        put("mime_message", f, raw)

put("catalogue_file", "demo-catalogue.toml", open(os.path.join(root, "catalogue/data/demo-catalogue.toml"),'rb').read())

order = '{"version":1,"prescriber":{"rpps":"10003456789"},"patient":{"ins":"%s"},"date":"2026-12-01","validity_days":90,"lines":[{"drug":"Paracétamol 1 g","dose":"1 comprimé 3 fois par jour","duration":"5 jours","quantity":2,"renewals":1}]}' % INS
def message(atts, extra="", top="multipart/mixed"):
    m = ("From: Laboratoire <labo@chu.mshub.test>\r\nTo: <%s@patient.mshub.test>\r\nSubject: Resultats\r\n"
         "Message-ID: <1@chu.mshub.test>\r\nIn-Reply-To: <0@patient.mshub.test>\r\nReferences: <0@patient.mshub.test>\r\nMIME-Version: 1.0\r\n%s"
         "Content-Type: %s; boundary=\"BOUNDARY\"\r\n\r\n--BOUNDARY\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nVeuillez trouver ci-joint.\r\n") % (INS, extra, top)
    for name, ct, data in atts:
        m += ("--BOUNDARY\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\n"
              "Content-Transfer-Encoding: base64\r\n\r\n") % (ct, name, name)
        e = base64.b64encode(data).decode()
        m += "".join(e[i:i+76] + "\r\n" for i in range(0, len(e), 76))
    m += "--BOUNDARY--\r\n"
    return m.encode()
om = message([("ordonnance.json", "application/json", order.encode())])
put("prescription_order", "message-with-order.eml", om)
put("prescription_order", "ordonnance.json", order)
put("prescription_order", "link.txt", "01HZX8K3M2&3f2a9c&MEUCIQDx")
put("mime_message", "order.eml", om)
put("mime_message", "xdm.eml", message([("IHE_XDM.ZIP", "application/zip", x1)], "X-Mshub-Document-Type: 11502-2\r\n"))
put("mime_message", "cda-pdf.eml", message([("cr.xml", "text/xml", cda_s), ("cr.pdf", "application/pdf", pdf)]))
put("mime_message", "report.eml", message([("details.txt", "message/delivery-status", b"Reporting-MTA: dns; mx.mshub.test\r\n\r\nFinal-Recipient: rfc822; a@b.test\r\nAction: failed\r\nStatus: 5.1.1\r\n")], top="multipart/report; report-type=delivery-status"))
put("mime_message", "nested.eml", message([("fwd.eml", "message/rfc822", om)]))
put("mime_message", "plain.eml", "From: a@b.test\r\nTo: c@d.test\r\nSubject: =?utf-8?q?Bonjour_=C3=A9?=\r\n\r\nBonjour.\r\n")

for i, s in enumerate([INS, "10003456789", "chu.mshub.test", f"{INS}@patient.mshub.test", "ines.soins@chu.mshub.test", "xn--caf-dma.test"]):
    put("directory_ids", f"id-{i}.txt", s)

smtp = [
 b"\x00EHLO client.test\r\nMAIL FROM:<labo@chu.mshub.test> SIZE=1000 BODY=8BITMIME\r\nRCPT TO:<%s@patient.mshub.test>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n..dot\r\n.\r\nQUIT\r\n" % INS.encode(),
 b"\x07EHLO client.test\r\nMAIL FROM:<> \r\nRCPT TO:<a@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b.test\r\nBDAT 5\r\nhelloBDAT 3 LAST\r\nabcRSET\r\nNOOP\r\nQUIT\r\n",
 b"\xffHELO x\r\nSTARTTLS\r\nAUTH PLAIN AGxhYm8AcGFzcw==\r\nVRFY a\r\nEXPN b\r\nHELP\r\nMAIL FROM:<a@b.test> SMTPUTF8\r\n",
]
for i, s in enumerate(smtp): put("smtp_command", f"session-{i}.bin", s)
imap = [b"a1 LOGIN user@patient.mshub.test \"pa ss\"", b"a2 SELECT INBOX", b"a3 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)] RFC822.SIZE)",
 b"a4 UID SEARCH SINCE 1-Jan-2024 NOT SEEN", b"a5 APPEND INBOX (\\Seen) {5}\r\nhello", b"a6 STORE 1:3 +FLAGS.SILENT (\\Deleted)", b"a7 LIST \"\" \"*\"",
 b"a8 STATUS \"Bo&AO4-te\" (MESSAGES UNSEEN UIDNEXT)", b"a9 IDLE", b"b1 CAPABILITY", b"b2 AUTHENTICATE PLAIN", b"b3 UID EXPUNGE 4:7", b"b4 COPY 2 Archives", b"b5 NAMESPACE", b"b6 ENABLE UTF8=ACCEPT"]
for i, s in enumerate(imap): put("imap_command", f"cmd-{i:02}.txt", s)
for i, s in enumerate([b"user@patient.mshub.test\xffsecret", "Bo\u00eete & \"quoted\"\\".encode() + b"\xff" + "mot de passe é\r\n".encode(), b"a\xff{5}\r\nhello", "日本語\xff&-".encode()]):
    put("imap_string_to_bytes_and_back", f"pair-{i}.bin", s)
shutil.rmtree(dd)
