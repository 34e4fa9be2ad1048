#!/usr/bin/env python3
"""Writes an IHE XDM zip (ITI TF-1 §16, TF-3 §4.2.4): README.TXT, INDEX.HTM and
IHE_XDM/SUBSET01/ with METADATA.XML (an ebRIM SubmitObjectsRequest) and one PDF document.

usage: make_xdm.py OUT.zip INS LOINC TITLE AUTHOR_EMAIL MARKER
The document is a tiny PDF carrying MARKER; its SHA-1 and size are in the metadata."""
import hashlib
import sys
import zipfile

out, ins, loinc, title, author, marker = sys.argv[1:7]
pdf = (
    "%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\n% " + marker + "\ntrailer<</Root 1 0 R>>\n%%EOF\n"
).encode()
pid = f"{ins}^^^&amp;1.2.250.1.213.1.4.8&amp;ISO"
metadata = f"""<?xml version="1.0" encoding="UTF-8"?>
<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">
  <rim:RegistryObjectList>
    <rim:ExtrinsicObject id="Document01" mimeType="application/pdf" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">
      <rim:Slot name="creationTime"><rim:ValueList><rim:Value>20261120103000</rim:Value></rim:ValueList></rim:Slot>
      <rim:Slot name="hash"><rim:ValueList><rim:Value>{hashlib.sha1(pdf).hexdigest()}</rim:Value></rim:ValueList></rim:Slot>
      <rim:Slot name="size"><rim:ValueList><rim:Value>{len(pdf)}</rim:Value></rim:ValueList></rim:Slot>
      <rim:Slot name="URI"><rim:ValueList><rim:Value>DOC0001.PDF</rim:Value></rim:ValueList></rim:Slot>
      <rim:Name><rim:LocalizedString value="{title}"/></rim:Name>
      <rim:Classification classificationScheme="urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d" classifiedObject="Document01" nodeRepresentation="">
        <rim:Slot name="authorPerson"><rim:ValueList><rim:Value>810003456786^BIOLOGISTE^Anne^^^Dr</rim:Value></rim:ValueList></rim:Slot>
        <rim:Slot name="authorInstitution"><rim:ValueList><rim:Value>Laboratoire de l'hôpital</rim:Value></rim:ValueList></rim:Slot>
        <rim:Slot name="authorTelecom"><rim:ValueList><rim:Value>^^Internet^{author}</rim:Value></rim:ValueList></rim:Slot>
      </rim:Classification>
      <rim:Classification classificationScheme="urn:uuid:f0306f51-975f-434e-a61c-c59651d33983" classifiedObject="Document01" nodeRepresentation="{loinc}">
        <rim:Slot name="codingScheme"><rim:ValueList><rim:Value>2.16.840.1.113883.6.1</rim:Value></rim:ValueList></rim:Slot>
      </rim:Classification>
      <rim:Classification classificationScheme="urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f" classifiedObject="Document01" nodeRepresentation="N"/>
      <rim:ExternalIdentifier identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427" registryObject="Document01" value="{pid}">
        <rim:Name><rim:LocalizedString value="XDSDocumentEntry.patientId"/></rim:Name>
      </rim:ExternalIdentifier>
    </rim:ExtrinsicObject>
    <rim:RegistryPackage id="SubmissionSet01"/>
  </rim:RegistryObjectList>
</lcm:SubmitObjectsRequest>
"""
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("README.TXT", "IHE XDM media\n")
    z.writestr("INDEX.HTM", "<html><body>XDM</body></html>\n")
    z.writestr("IHE_XDM/SUBSET01/METADATA.XML", metadata)
    z.writestr("IHE_XDM/SUBSET01/DOC0001.PDF", pdf)
